"""Kill the service with SIGKILL while it takes claims and settles them in batches, restart:
every acknowledged claim is there, every approved claim is paid exactly once (one payment, one
``InvoiceSettled`` event), and the database agrees with the chain."""

from __future__ import annotations

import hashlib
import textwrap
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from api.bootstrap import open_services
from api.db import models
from api.demo.seed import seed_demo
from api.settings import Settings
from tests.api import killing

WORKER = textwrap.dedent("""
    import sys
    from datetime import UTC, datetime
    from pathlib import Path
    from sqlalchemy import select
    from api.refusals import Refused
    from api.db import models
    from api.bootstrap import open_services
    from api.settings import Settings

    services = open_services(Settings(data_dir=Path(sys.argv[1]), anchor_interval_ms=0))
    services.claim.clock = lambda: datetime(2026, 1, 15, 10, tzinfo=UTC)
    with services.sessions() as db:
        citizens = {c.id_number_hash: c for c in db.scalars(select(models.Citizen))}
        invoices = sorted(db.scalars(select(models.Invoice)), key=lambda r: r.invoice_id)
    start = int(sys.argv[2])
    if len(sys.argv) > 3:  # die at the worst moment: paid on chain, not yet in the database
        import os, signal
        settle = services.ledger.settle
        def settle_then_die(*args, **kwargs):
            outcomes = settle(*args, **kwargs)
            if any(o.receipt is not None for o in outcomes):
                os.kill(os.getpid(), signal.SIGKILL)
            return outcomes
        services.ledger.settle = settle_then_die
    for n, row in enumerate(invoices[start:] + invoices[:start], start=1):
        try:
            claim = services.claim.submit(
                citizens[row.patient_id_hash], f"{row.bill_code}-{row.bill_number}", "basic", "app"
            )
        except Refused:
            continue
        # Acknowledged: the claim's reference is out. Print it before anything else happens.
        print(claim.id, flush=True)
        if n % 3 == 0:
            services.settle.run()
""")

SETTINGS = {"anchor_interval_ms": 0}


def _run_and_kill(
    data: Path, start: int, acks_before_kill: int, delay: float, *flags: str
) -> set[str]:
    """The claim references the worker acknowledged before it was killed (or died)."""
    args = [str(data), str(start), *flags]
    return set(killing.run_and_kill(WORKER, args, acks_before_kill, delay, may_die=bool(flags)))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kill_during_settlement_then_restart_pays_each_claim_once(
    tmp_path: Path, seed: int
) -> None:
    services = open_services(Settings(data_dir=tmp_path, **SETTINGS))
    assert seed_demo(services, end=date(2025, 1, 1)) > 0
    services.close()
    rng = int.from_bytes(hashlib.sha256(bytes([seed])).digest()[:4], "big")
    acked = _run_and_kill(tmp_path, 0, 4 + rng % 5, (rng % 89) / 1000)
    acked |= _run_and_kill(tmp_path, 17, 3 + rng % 4, (rng % 61) / 1000)

    services = open_services(Settings(data_dir=tmp_path, **SETTINGS))
    try:
        services.claim.clock = lambda: datetime(2026, 1, 15, 10, tzinfo=UTC)
        services.settle.run()  # what the restarted loop does first
        with services.sessions() as db:
            claims = {c.id: c for c in db.scalars(select(models.Claim))}
            payments = {p.claim_id: p for p in db.scalars(select(models.Payment))}
        assert acked <= set(claims), "an acknowledged claim was lost"
        states = Counter(c.state for c in claims.values())
        assert states["approved"] == states["settling"] == 0, states
        paid = {i for i, c in claims.items() if c.state == "paid"}
        assert paid == set(payments) and paid, "a paid claim without its payment, or the reverse"
        events = services.ledger.events(name="InvoiceSettled")
        settled = Counter(e.args["invoice_id"] for e in events)
        assert max(settled.values()) == 1, "an invoice was settled twice"
        on_chain = {e.args["invoice_id"]: e.args["amount"] for e in events}
        in_db = {claims[i].invoice_id: p.amount_fen for i, p in payments.items()}
        assert in_db == on_chain
        check = services.reconciliation.reconcile()
        assert check.consistent, check.as_json()
        assert check.payments_checked == len(payments)
    finally:
        services.close()


def test_killed_after_the_chain_paid_and_before_the_database_knew(tmp_path: Path) -> None:
    services = open_services(Settings(data_dir=tmp_path, **SETTINGS))
    assert seed_demo(services, end=date(2025, 1, 1)) > 0
    services.close()
    acked = _run_and_kill(tmp_path, 0, 100, 0, "die-after-settle")
    services = open_services(Settings(data_dir=tmp_path, **SETTINGS))
    try:
        with services.sessions() as db:
            stuck = set(db.scalars(select(models.Claim.id).where(models.Claim.state == "settling")))
            assert not list(db.scalars(select(models.Payment)))
        assert stuck and stuck <= acked  # the kill landed where it was meant to
        events = services.ledger.events(name="InvoiceSettled")
        assert len(events) == len(stuck)  # the chain paid them
        services.settle.run()  # reconciles with the chain; never sends them again
        with services.sessions() as db:
            claims = {
                c.id: c for c in db.scalars(select(models.Claim).where(models.Claim.id.in_(stuck)))
            }
            payments = {p.claim_id: p.amount_fen for p in db.scalars(select(models.Payment))}
        assert {c.state for c in claims.values()} == {"paid"}
        assert set(payments) == stuck
        assert len(services.ledger.events(name="InvoiceSettled")) == len(stuck)
        assert {e.args["invoice_id"]: e.args["amount"] for e in events} == {
            claims[i].invoice_id: fen for i, fen in payments.items()
        }
        assert services.reconciliation.reconcile().consistent
    finally:
        services.close()
