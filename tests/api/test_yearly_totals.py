"""Yearly totals (deductible used, amount paid) follow what is paid: a claim that ends rejected,
by a reviewer or by the ledger, gives back what it took in the transaction that rejects it;
two writers of one citizen's totals cannot lose an update. On SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from api.db import models
from chain.model import InvoiceLeaf
from chain.sequencer import SettlementRequest
from tests.api.flagged import upload_copy
from tests.api.test_claims import BIG_INPATIENT, DATASET, Demo, demo_world

ADMIN = {"Authorization": "Bearer dev-admin-token"}


@pytest.fixture
def demo(tmp_path: Path, database_url: str | None) -> Iterator[Demo]:
    """The demo world, on SQLite and on a real PostgreSQL (``database_url``)."""
    with demo_world(tmp_path, database_url) as world:
        yield world


def _pools(demo: Demo, citizen_id: int, payer: str = "basic") -> dict[str, dict[str, int]]:
    with demo.services.sessions() as db:
        row = db.get(models.PayerAccumulator, (citizen_id, payer, 2025))
    return {} if row is None else row.pools


def _paid(pools: dict[str, dict[str, int]]) -> int:
    return sum(p["paid_fen"] for p in pools.values())


def _deductible(pools: dict[str, dict[str, int]]) -> int:
    return sum(p["deductible_used_fen"] for p in pools.values())


def _citizen_id(demo: Demo, claim_id: str) -> int:
    with demo.services.sessions() as db:
        claim = db.get(models.Claim, claim_id)
    assert claim is not None
    return claim.citizen_id


def test_a_rejected_review_gives_back_the_deductible_and_the_amount(demo: Demo) -> None:
    reference = upload_copy(demo.services, DATASET, BIG_INPATIENT, "0099000005", flagged=True)
    claim = demo.client.post(
        "/api/v1/claims", json={"invoice": reference}, headers=demo.sign_in(BIG_INPATIENT)
    ).json()
    assert claim["state"] == "in_review" and claim["amount_fen"] > 0
    citizen_id = _citizen_id(demo, claim["claim_id"])
    taken = _pools(demo, citizen_id)
    assert _paid(taken) == claim["amount_fen"] and _deductible(taken) > 0
    rejected = demo.client.post(
        f"/api/v1/review/{claim['claim_id']}",
        headers=ADMIN,
        json={"approve": False, "reason": "billed twice"},
    )
    assert rejected.status_code == 200 and rejected.json()["state"] == "rejected"
    assert _paid(_pools(demo, citizen_id)) == _deductible(_pools(demo, citizen_id)) == 0
    # The citizen's next claim meets the whole deductible again and pays as the first would.
    again = demo.claim(BIG_INPATIENT).json()
    assert again["amount_fen"] == claim["amount_fen"], again["state"]
    assert _paid(_pools(demo, citizen_id)) == again["amount_fen"]


def test_a_claim_the_ledger_refuses_gives_back_what_it_took(demo: Demo) -> None:
    claim = demo.claim(BIG_INPATIENT).json()
    assert claim["state"] == "approved"
    citizen_id = _citizen_id(demo, claim["claim_id"])
    assert _paid(_pools(demo, citizen_id)) == claim["amount_fen"]
    # Another payer is paid the whole invoice straight on chain: the basic claim's payment
    # is then refused by the contract's cap.
    with demo.services.sessions() as db:
        row = db.get(models.Invoice, demo.invoice_id(BIG_INPATIENT))
    assert row is not None
    leaf = InvoiceLeaf(row.invoice_id, row.record_hash, row.hospital, row.total)
    (direct,) = demo.services.ledger.settle(
        "assistance",
        [SettlementRequest("direct", leaf, row.total, row.signature)],
    )
    assert direct.error is None
    assert demo.services.settle.run() == 0
    with demo.services.sessions() as db:
        stored = db.get(models.Claim, claim["claim_id"])
    assert stored is not None
    assert (stored.state, stored.reason_code) == ("rejected", "ledger_PaidAboveTotal")
    assert _paid(_pools(demo, citizen_id)) == _deductible(_pools(demo, citizen_id)) == 0


def test_two_writers_of_the_same_totals_cannot_both_write(demo: Demo) -> None:
    from api.flows import totals as claim_totals

    claim = demo.claim(BIG_INPATIENT).json()
    citizen_id = _citizen_id(demo, claim["claim_id"])
    key = (citizen_id, "basic", 2025)
    sessions = demo.services.sessions
    with sessions() as first, sessions() as second:
        (pools, version), (_, same) = (
            claim_totals.load(first, [citizen_id])[key],
            claim_totals.load(second, [citizen_id])[key],
        )
        assert version == same
        claim_totals.store(
            first, {key: ({**pools, "mark": {"paid_fen": 1, "deductible_used_fen": 0}}, version)}
        )
        first.commit()
        with pytest.raises(claim_totals.TotalsConflict):
            claim_totals.store(second, {key: (pools, same)})
        second.rollback()
    with sessions() as db:
        (stored, now) = claim_totals.load(db, [citizen_id])[key]
    assert now == version + 1 and "mark" in stored
