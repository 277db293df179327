"""The fast tier's world: the claim, review and settle flows on in-memory fakes (no py-evm, no
migrations, no worker process), with one hospital, one citizen and invoices to claim."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from sqlalchemy.orm import Session, sessionmaker

import claims
from api.adapters.catalogue import load_catalogue
from api.adapters.workers import WorkerPool
from api.db import models
from api.flows.claim import ClaimFlow
from api.flows.decide import Decider
from api.flows.review import ReviewFlow
from api.flows.settle import SettleFlow
from tests.fast.fakes import (
    DOMAIN,
    FakeLedger,
    FakeVerifier,
    NoLimits,
    add_citizen,
    add_hospital,
    add_invoice,
    memory_uow,
)

NOW = datetime(2026, 1, 15, 10, tzinfo=UTC)
CATALOGUE = load_catalogue()
#: A line the audit passes (全身麻醉, 800 yuan, class A): basic pays part, the claim is approved.
PASSING = CATALOGUE["F003301000030000"]
#: A line of a code the catalogue does not have: the audit blocks it, the claim goes to review.
UNKNOWN = SimpleNamespace(
    code="F999999999990000", name="未知项目", item_class=claims.ItemClass.A, unit_price_fen=80000
)


@dataclass
class World:
    uow: sessionmaker[Session]
    ledger: FakeLedger
    verifier: FakeVerifier
    claim: ClaimFlow
    review: ReviewFlow
    settle: SettleFlow
    citizen: models.Citizen

    def invoice(self, entry: object = PASSING) -> bytes:
        """A new invoice of the citizen with one line of ``entry``; its id."""
        with self.uow() as db:
            row = add_invoice(db, self.citizen, entry)
            db.commit()
            return row.invoice_id

    def submit(self, invoice_id: bytes, payer: str = "basic") -> models.Claim:
        return self.claim.submit(self.citizen, "0x" + invoice_id.hex(), payer, "app")

    def stored(self, claim_id: str) -> models.Claim:
        with self.uow() as db:
            found = db.get(models.Claim, claim_id)
        assert found is not None
        return found

    def events(self, claim_id: str) -> list[str]:
        with self.uow() as db:
            return [
                e.state
                for e in db.query(models.ClaimEvent)
                .filter_by(claim_id=claim_id)
                .order_by(models.ClaimEvent.id)
            ]

    def payments(self, claim_id: str) -> list[models.Payment]:
        with self.uow() as db:
            return list(db.query(models.Payment).filter_by(claim_id=claim_id))


@pytest.fixture
def world() -> Iterator[World]:
    yield from _world()


@pytest.fixture
def other() -> Iterator[World]:
    """A second world, apart from ``world``."""
    yield from _world()


def _world() -> Iterator[World]:
    uow = memory_uow()
    with uow() as db:
        add_hospital(db)
        citizen = add_citizen(db)
        db.commit()
    ledger = FakeLedger()
    verifier = FakeVerifier(ledger)
    decider = Decider(uow, CATALOGUE)
    pool = WorkerPool(1)  # started on first use: never, the flow decides in this process
    flow = ClaimFlow(
        uow, ledger, verifier, NoLimits(), DOMAIN, decider, pool, parallel=False, clock=lambda: NOW
    )
    yield World(
        uow,
        ledger,
        verifier,
        flow,
        ReviewFlow(uow, ledger, clock=lambda: NOW),
        SettleFlow(uow, ledger, decider, clock=lambda: NOW),
        citizen,
    )
    flow.close()
