"""Kill the service process at any moment of a stream of large uploads (120 invoices each),
restart: every acknowledged invoice is anchored exactly once (no loss, no second leaf, no
second checkpoint of a size), and the database reconciles with the chain."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import func, select

from api.bootstrap import open_services
from api.db import models
from api.settings import Settings
from tests.api import killing

WORKER = textwrap.dedent("""
    import hashlib, sys
    from datetime import UTC, datetime
    from pathlib import Path
    from eth_account import Account
    from api.adapters.hospital_files import sign_item
    from api.bootstrap import open_services
    from api.settings import Settings
    from chain.model import HospitalLevel
    from tests.api.conftest import HOSPITAL, invoice_json, patient

    settings = Settings(data_dir=Path(sys.argv[1]), anchor_batch_size=7, anchor_interval_ms=0,
                        payers=("basic",))
    services = open_services(settings)
    key = Account.from_key(hashlib.sha256(b"crash-test-hospital").digest())
    if services.registry.hospital(HOSPITAL) is None:
        services.registry.refresh()
    if services.registry.hospital(HOSPITAL) is None:
        services.hospitals.register(HOSPITAL, "test", HospitalLevel.SECONDARY, key.address,
                          datetime(2024, 1, 1, tzinfo=UTC))
    start = int(sys.argv[2])
    n = start
    while True:
        items = []
        for _ in range(120):  # a large upload: the kill may land in the middle of one
            pat = patient(n)
            items.append(sign_item({"invoice": invoice_json(n, pat=pat), "patient": pat},
                                   key.key, services.domain))
            n += 1
        result = services.ingest.upload(HOSPITAL, items)
        assert not result.refusals, result.refusals
        # Acknowledged: the receipts are out. Print them before anything else happens.
        print(" ".join(r.invoice_id.hex() for _, r in result.receipts), flush=True)
        services.anchoring.run_once()
""")


def run_and_kill(data: Path, start: int, acks_before_kill: int, delay: float) -> set[bytes]:
    """The invoice ids the worker acknowledged before it was killed."""
    lines = killing.run_and_kill(WORKER, [str(data), str(start)], acks_before_kill, delay)
    return {bytes.fromhex(h) for line in lines for h in line.split()}


@pytest.mark.parametrize("seed", [1, 2])
def test_kill_at_any_moment_then_restart_anchors_each_invoice_once(
    tmp_path: Path, seed: int
) -> None:
    rng = int.from_bytes(hashlib.sha256(bytes([seed])).digest()[:4], "big")
    acked = run_and_kill(tmp_path, 1, 3 + rng % 3, (rng % 97) / 1000)
    acked |= run_and_kill(tmp_path, 10_000, 2 + rng % 4, (rng % 53) / 1000)

    settings = Settings(
        data_dir=tmp_path, anchor_batch_size=7, anchor_interval_ms=0, payers=("basic",)
    )
    services = open_services(settings)
    try:
        services.anchoring.run_once(force=True)
        with services.sessions() as db:
            stored = {row.invoice_id: row for row in db.scalars(select(models.Invoice))}
            pending = db.scalar(
                select(func.count())
                .select_from(models.Outbox)
                .where(models.Outbox.appended_at.is_(None))
            )
        assert acked <= set(stored), "an acknowledged invoice was lost"
        assert pending == 0
        with services.ledger.exclusive() as parts:
            log = parts.log
            assert log.size == len(stored), "a leaf was appended twice or lost"
            for invoice_id, row in stored.items():
                assert row.leaf_index is not None and log.index_of(invoice_id) == row.leaf_index
                assert row.checkpoint_size is not None and row.leaf_index < row.checkpoint_size
            sizes = [e.args["size"] for e in services.ledger.events(name="CheckpointAnchored")]
            assert sizes == sorted(set(sizes)), "a checkpoint was anchored twice"
            assert sizes[-1] == log.size
            latest = parts.session.ledger.latest_checkpoint()
            assert latest is not None and latest.root == log.root()
        with services.sessions() as db:
            recorded = list(
                db.scalars(select(models.Checkpoint.size).order_by(models.Checkpoint.size))
            )
        assert recorded == sizes
        assert services.reconciliation.reconcile().consistent
    finally:
        services.close()
