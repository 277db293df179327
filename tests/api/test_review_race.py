"""Review decisions race in the database: one wins, every other reviewer is told who decided
what and when; settlement takes a claim once, and a claim it took cannot be decided. Over HTTP
(the TestClient from threads), on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from api.db import models
from tests.api.flagged import upload_copy
from tests.api.test_claims import BIG_INPATIENT, DATASET, Demo, demo_world

REVIEWERS = 30


@pytest.fixture
def demo(tmp_path: Path, database_url: str | None) -> Iterator[Demo]:
    """The demo world, on SQLite and on a real PostgreSQL (``database_url``)."""
    with demo_world(tmp_path, database_url) as world:
        yield world


def _flagged_claim(demo: Demo) -> dict[str, Any]:
    reference = upload_copy(demo.services, DATASET, BIG_INPATIENT, "0099000001", flagged=True)
    response = demo.client.post(
        "/api/v1/claims", json={"invoice": reference}, headers=demo.sign_in(BIG_INPATIENT)
    )
    assert response.status_code == 201, response.text
    claim: dict[str, Any] = response.json()
    assert claim["state"] == "in_review"
    return claim


def _events(demo: Demo, claim_id: str) -> list[models.ClaimEvent]:
    with demo.services.sessions() as db:
        return list(
            db.scalars(
                select(models.ClaimEvent)
                .where(models.ClaimEvent.claim_id == claim_id)
                .order_by(models.ClaimEvent.id)
            )
        )


def test_one_of_thirty_simultaneous_decisions_wins(demo: Demo) -> None:
    claim = _flagged_claim(demo)
    invoice_id = bytes.fromhex(claim["invoice_id"][2:])
    tokens = [
        demo.services.staff_tokens.issue(f"reviewer-{n}", "payer", "basic")
        for n in range(REVIEWERS)
    ]
    barrier = threading.Barrier(REVIEWERS)

    def decide(n: int) -> tuple[int, int, dict[str, Any]]:
        body = {"approve": n % 2 == 0, "reason": f"reviewer {n} decided"}
        barrier.wait()
        response = demo.client.post(
            f"/api/v1/review/{claim['claim_id']}",
            json=body,
            headers={"Authorization": f"Bearer {tokens[n]}"},
        )
        return n, response.status_code, response.json()

    with ThreadPoolExecutor(REVIEWERS) as pool:
        results = list(pool.map(decide, range(REVIEWERS)))
    winners = [(n, body) for n, status, body in results if status == 200]
    assert len(winners) == 1, [status for _, status, _ in results]
    (winner, won), decision = winners[0], "approved" if winners[0][0] % 2 == 0 else "rejected"
    assert won["state"] == decision
    decided_at = None
    for n, status, body in results:
        if n == winner:
            continue
        assert status == 409, body
        error = body["error"]
        assert error["code"] == "already_decided"
        assert (error["decision"], error["decided_by"]) == (decision, f"payer:reviewer-{winner}")
        decided_at = decided_at or error["decided_at"]
        assert error["decided_at"] == decided_at
    # The history holds exactly one decision, the winner's.
    events = _events(demo, claim["claim_id"])
    after_review = [e for e in events[[e.state for e in events].index("in_review") + 1 :]]
    assert [(e.state, e.actor) for e in after_review] == [(decision, f"payer:reviewer-{winner}")]
    assert after_review[0].at.isoformat() == decided_at
    state = demo.services.ledger.claim_state(invoice_id)
    basic = demo.services.ledger.payer_address("basic")
    demo.services.settle.run()
    after = demo.services.ledger.claim_state(invoice_id)
    with demo.services.sessions() as db:
        stored = db.get(models.Claim, claim["claim_id"])
        payments = list(db.scalars(select(models.Payment)))
    assert stored is not None
    if decision == "rejected":
        assert state.locked_by is None and after.paid == 0  # released once, by the winner
        assert stored.state == "rejected" and stored.amount_fen == 0 and payments == []
    else:
        assert state.locked_by == basic
        assert stored.state == "paid" and after.paid == stored.amount_fen == claim["amount_fen"]
        assert [p.amount_fen for p in payments] == [claim["amount_fen"]]
    auditor = {"Authorization": "Bearer dev-admin-token"}
    assert demo.client.get("/api/v1/audit/reconciliation", headers=auditor).json()["consistent"]


def test_a_decided_or_settled_claim_cannot_be_decided_again(demo: Demo) -> None:
    claim = _flagged_claim(demo)
    admin = {"Authorization": "Bearer dev-admin-token"}
    path = f"/api/v1/review/{claim['claim_id']}"
    assert demo.client.post(path, headers=admin, json={"approve": True}).status_code == 200
    assert demo.services.settle.run() == 1
    late = demo.client.post(path, headers=admin, json={"approve": False, "reason": "too late"})
    assert late.status_code == 409
    error = late.json()["error"]
    assert (error["code"], error["decision"], error["decided_by"], error["state"]) == (
        "already_decided",
        "approved",
        "admin:authority",
        "paid",
    )
    other = next(
        i
        for i in (2, 6, 13, 16)
        if DATASET.citizen_of(i).id_number != DATASET.citizen_of(BIG_INPATIENT).id_number
    )
    auto = demo.claim(other).json()  # approved without review
    assert auto["state"] == "approved"
    refused = demo.client.post(
        f"/api/v1/review/{auto['claim_id']}", headers=admin, json={"approve": True}
    )
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "not_in_review"


def test_simultaneous_settlements_take_each_claim_once(demo: Demo) -> None:
    claims = [demo.claim(i).json() for i in (BIG_INPATIENT, 2, 6)]
    assert all(c["state"] == "approved" for c in claims), claims
    barrier = threading.Barrier(4)

    def settle() -> int:
        barrier.wait()
        return demo.services.settle.run()

    with ThreadPoolExecutor(4) as pool:
        paid = list(pool.map(lambda _: settle(), range(4)))
    assert sum(paid) == 3
    with demo.services.sessions() as db:
        stored = {c.id: c for c in db.scalars(select(models.Claim))}
        payments = {p.claim_id: p.amount_fen for p in db.scalars(select(models.Payment))}
    for claim in claims:
        assert stored[claim["claim_id"]].state == "paid"
        assert payments[claim["claim_id"]] == claim["amount_fen"]
        on_chain = demo.services.ledger.claim_state(bytes.fromhex(claim["invoice_id"][2:]))
        assert on_chain.paid == claim["amount_fen"]
    auditor = {"Authorization": "Bearer dev-admin-token"}
    assert demo.client.get("/api/v1/audit/reconciliation", headers=auditor).json()["consistent"]
