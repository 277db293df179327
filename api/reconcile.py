"""Reconciliation of the database against the chain, for auditors who do not trust either
alone: the log is recomputed from the database's invoice rows and every checkpoint root on
chain is compared with it; every payment the database records is compared with the amount
paid on chain. A tampered database row shows up as the first checkpoint whose root differs."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from api.db import models
from api.services import Services
from chain import merkle
from chain.model import InvoiceLeaf


@dataclass
class Reconciliation:
    checkpoints_checked: int = 0
    log_size_in_database: int = 0
    anchored_size_on_chain: int = 0
    pending_invoices: int = 0
    checkpoint_mismatches: list[dict[str, Any]] = field(default_factory=list)
    changed_invoices: list[dict[str, Any]] = field(default_factory=list)
    payment_mismatches: list[dict[str, Any]] = field(default_factory=list)
    payments_checked: int = 0

    @property
    def consistent(self) -> bool:
        return not (self.checkpoint_mismatches or self.payment_mismatches or self.changed_invoices)

    def as_json(self) -> dict[str, Any]:
        return {"consistent": self.consistent, **self.__dict__}


def reconcile(services: Services) -> Reconciliation:
    result = Reconciliation()
    with services.sessions() as db:
        rows = db.execute(
            select(
                models.Invoice.leaf_index,
                models.Invoice.invoice_id,
                models.Invoice.record_hash,
                models.Invoice.hospital,
                models.Invoice.total,
            )
            .where(models.Invoice.leaf_index.is_not(None))
            .order_by(models.Invoice.leaf_index)
        ).all()
        result.pending_invoices = len(
            db.scalars(
                select(models.Invoice.invoice_id).where(models.Invoice.leaf_index.is_(None))
            ).all()
        )
        paid: dict[bytes, int] = defaultdict(int)
        for invoice_id, amount in db.execute(
            select(models.Claim.invoice_id, models.Payment.amount_fen).join(
                models.Payment, models.Payment.claim_id == models.Claim.id
            )
        ).all():
            paid[invoice_id] += amount
    entries = [InvoiceLeaf(r.invoice_id, r.record_hash, r.hospital, r.total).entry() for r in rows]
    result.log_size_in_database = len(entries)
    levels = merkle.MerkleLevels(entries) if entries else None
    # Leaves 0..contiguous-1 are all in the database; a checkpoint beyond that cannot match.
    contiguous = next((i for i, r in enumerate(rows) if r.leaf_index != i), len(rows))
    with services.lock:
        events = services.session.ledger.events(name="CheckpointAnchored")
    for event in events:
        size, root = event.args["size"], event.args["root"]
        result.checkpoints_checked += 1
        result.anchored_size_on_chain = max(result.anchored_size_on_chain, size)
        if levels is None or size > contiguous:
            result.checkpoint_mismatches.append(
                {
                    "size": size,
                    "chain_root": "0x" + root.hex(),
                    "database_root": None,
                    "reason": "the database has fewer leaves than the checkpoint",
                }
            )
            continue
        mine = levels.range_hash(0, size)
        if mine != root:
            result.checkpoint_mismatches.append(
                {
                    "size": size,
                    "chain_root": "0x" + root.hex(),
                    "database_root": "0x" + mine.hex(),
                    "reason": "a leaf below this size differs from what was anchored",
                }
            )
    if result.checkpoint_mismatches:
        result.changed_invoices = _changed_invoices(services, rows, events)
    for invoice_id, amount in paid.items():
        result.payments_checked += 1
        with services.lock:
            on_chain = services.session.ledger.claim_state(invoice_id).paid
        if on_chain != amount:
            result.payment_mismatches.append(
                {
                    "invoice_id": "0x" + invoice_id.hex(),
                    "database_paid": amount,
                    "chain_paid": on_chain,
                }
            )
    return result


def _changed_invoices(
    services: Services, rows: Sequence[Any], events: Sequence[Any]
) -> list[dict[str, Any]]:
    """Which invoices differ from what was anchored: the log's leaves up to the latest
    checkpoint whose root the log reproduces (so the log is what the chain anchored there)
    compared with the leaves recomputed from the database, and the leaves the database lost."""
    with services.lock:
        log = services.log
        trusted = max(
            (
                e.args["size"]
                for e in events
                if e.args["size"] <= log.size and log.root(e.args["size"]) == e.args["root"]
            ),
            default=0,
        )
        anchored = log.entries(0, trusted)
    mine = {r.leaf_index: r for r in rows}
    changed = []
    for index, (invoice_id, entry) in enumerate(anchored):
        row = mine.get(index)
        if row is None or row.invoice_id != invoice_id:
            changed.append(
                {"leaf_index": index, "invoice_id": "0x" + invoice_id.hex(), "change": "missing"}
            )
        elif InvoiceLeaf(row.invoice_id, row.record_hash, row.hospital, row.total).entry() != entry:
            changed.append(
                {"leaf_index": index, "invoice_id": "0x" + invoice_id.hex(), "change": "altered"}
            )
    return changed
