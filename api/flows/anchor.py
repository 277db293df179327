"""Drains the outbox into the log and the chain, and records where each invoice landed.

Exactly once, across crashes: the log append is idempotent by invoice id (a leaf appended
before a crash gets the same index again), the outbox row is marked in the same transaction
that records the leaf index, and checkpoints are read back from the chain, so an anchor sent
just before a crash is recorded on restart rather than sent twice.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from sqlalchemy import select, update

from api.db import models
from api.db.queries import leaf_of
from api.flows import ports
from chain.model import Checkpoint


class AnchorFlow:
    """The database side of the sequencer: the outbox into the log, the chain's checkpoints
    into the database."""

    def __init__(
        self,
        uow: ports.UnitOfWork,
        ledger: ports.Ledger,
        clock: ports.Clock = ports.utc_now,
    ) -> None:
        self._uow = uow
        self._ledger = ledger
        self._clock = clock
        # One round at a time in this process (the background loop, seeding, a tool): two
        # would read the same outbox rows and record the same checkpoint twice. Across
        # processes the sequencer lock elects the one that anchors.
        self._round = threading.RLock()

    def drain(self, limit: int = 5000) -> int:
        """Appends up to ``limit`` pending outbox entries to the log; returns how many."""
        with self._round, self._uow() as session:
            rows = session.execute(
                select(
                    models.Outbox.id,
                    models.Invoice.invoice_id,
                    models.Invoice.record_hash,
                    models.Invoice.hospital,
                    models.Invoice.total,
                )
                .join(models.Invoice, models.Invoice.invoice_id == models.Outbox.invoice_id)
                .where(models.Outbox.appended_at.is_(None))
                .order_by(models.Outbox.id)
                .limit(limit)
            ).all()
            if not rows:
                return 0
            leaves = [leaf_of(r) for r in rows]
            indexes = self._ledger.append(leaves)
            now = self._clock()
            session.execute(
                update(models.Invoice),
                [
                    {"invoice_id": leaf.invoice_id, "leaf_index": index}
                    for leaf, index in zip(leaves, indexes, strict=True)
                ],
            )
            session.execute(update(models.Outbox), [{"id": r.id, "appended_at": now} for r in rows])
            session.commit()
        return len(rows)

    def anchor_if_due(self, force: bool = False) -> Checkpoint | None:
        """Anchors a checkpoint when one is due (or ``force``) and records it."""
        with self._round:
            checkpoint = self._ledger.anchor(force=force)
            self.sync_checkpoints()
            return checkpoint

    def run_once(self, force: bool = False) -> int:
        """One round of the background loop: drain everything, anchor what is due."""
        with self._round:
            drained = 0
            while (n := self.drain()) > 0:
                drained += n
                self.anchor_if_due()
            self.anchor_if_due(force=force)
            return drained

    def sync_checkpoints(self) -> None:
        """Records every checkpoint on chain that the database does not have yet, and marks
        the invoices each one covers."""
        with self._round, self._uow() as session:
            known = (
                session.scalar(
                    select(models.Checkpoint.size).order_by(models.Checkpoint.size.desc()).limit(1)
                )
                or 0
            )
            latest = self._ledger.anchored()
            if latest is None or latest.size <= known:
                return
            from_block = (
                session.scalar(
                    select(models.Checkpoint.block_number)
                    .order_by(models.Checkpoint.size.desc())
                    .limit(1)
                )
                or 0
            )
            for event in self._ledger.events(from_block, name="CheckpointAnchored"):
                size = event.args["size"]
                if size <= known:
                    continue
                session.add(
                    models.Checkpoint(
                        size=size,
                        root=event.args["root"],
                        tx_hash=event.tx_hash,
                        block_number=event.block_number,
                        anchored_at=datetime.fromtimestamp(
                            self._ledger.block_timestamp(event.block_number), UTC
                        ),
                    )
                )
                session.execute(
                    update(models.Invoice)
                    .where(
                        models.Invoice.leaf_index < size, models.Invoice.checkpoint_size.is_(None)
                    )
                    .values(checkpoint_size=size)
                )
            session.commit()
