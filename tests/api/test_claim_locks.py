"""The payer's lock on chain while a claim waits for review: taken before the claim is stored,
never by a count anyone can move (verifications only flag), and a claim of an invoice another
payer holds is refused with nothing written. On SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from api.db import models
from tests.api.flagged import upload_copy
from tests.api.test_claims import BIG_INPATIENT, DATASET, Demo, demo_world

ADMIN = {"Authorization": "Bearer dev-admin-token"}


@pytest.fixture
def demo(tmp_path: Path, database_url: str | None) -> Iterator[Demo]:
    """The demo world, on SQLite and on a real PostgreSQL (``database_url``)."""
    with demo_world(tmp_path, database_url) as world:
        yield world


def _counts(demo: Demo) -> tuple[int, int, Any]:
    with demo.services.sessions() as db:
        claims = db.scalar(select(func.count()).select_from(models.Claim))
        events = db.scalar(select(func.count()).select_from(models.ClaimEvent))
        totals = sorted(
            (a.citizen_id, a.payer, a.year, str(a.pools), a.version)
            for a in db.scalars(select(models.PayerAccumulator))
        )
    return claims or 0, events or 0, totals


def test_verified_often_only_flags(demo: Demo) -> None:
    demo.verify_often(BIG_INPATIENT)  # 25 verifications: more than the rule's 20
    claim = demo.claim(BIG_INPATIENT).json()
    assert claim["state"] == "approved"
    (hit,) = [h for h in claim["audit_hits"] if h["code"] == "verified_often"]
    assert hit["severity"] == "info"
    state = demo.services.ledger.claim_state(demo.invoice_id(BIG_INPATIENT))
    assert state.locked_by is None


def _held_by_critical(demo: Demo) -> tuple[str, bytes, dict[str, Any]]:
    """A large flagged invoice paid by basic insurance, its critical-illness claim in review."""
    reference = upload_copy(
        demo.services, DATASET, BIG_INPATIENT, "0099000003", flagged=True, scale=100, days=40
    )
    headers = demo.sign_in(BIG_INPATIENT)
    basic = demo.client.post("/api/v1/claims", json={"invoice": reference}, headers=headers).json()
    assert basic["state"] == "in_review"
    assert (
        demo.client.post(
            f"/api/v1/review/{basic['claim_id']}", headers=ADMIN, json={"approve": True}
        ).status_code
        == 200
    )
    assert demo.services.settle.run() == 1
    critical = demo.client.post(
        "/api/v1/claims", json={"invoice": reference, "payer": "critical"}, headers=headers
    ).json()
    assert critical["state"] == "in_review"
    invoice_id = bytes.fromhex(critical["invoice_id"][2:])
    return reference, invoice_id, critical


def test_a_claim_of_an_invoice_another_payer_holds_is_refused_and_not_stored(demo: Demo) -> None:
    reference, invoice_id, critical = _held_by_critical(demo)
    services = demo.services
    assert services.ledger.claim_state(invoice_id).locked_by == (
        services.ledger.payer_address("critical")
    )
    before = _counts(demo)
    headers = demo.sign_in(BIG_INPATIENT)
    refused = demo.client.post(
        "/api/v1/claims", json={"invoice": reference, "payer": "commercial"}, headers=headers
    )
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "invoice_locked"
    assert error["locked_by"] == services.ledger.payer_address("critical")
    assert _counts(demo) == before  # no claim, no event, no yearly total moved
    # Once critical illness has decided and paid, commercial insurance claims as usual,
    # priced after it.
    assert (
        demo.client.post(
            f"/api/v1/review/{critical['claim_id']}", headers=ADMIN, json={"approve": True}
        ).status_code
        == 200
    )
    assert services.settle.run() == 1
    later = demo.client.post(
        "/api/v1/claims", json={"invoice": reference, "payer": "commercial"}, headers=headers
    )
    assert later.status_code == 201, later.text
    assert later.json()["adjudication"]["already_paid_fen"] == (
        services.ledger.claim_state(invoice_id).paid
    )


def test_two_payers_racing_for_the_lock_store_one_claim_in_review(demo: Demo) -> None:
    reference = upload_copy(
        demo.services, DATASET, BIG_INPATIENT, "0099000004", flagged=True, scale=100, days=40
    )
    headers = demo.sign_in(BIG_INPATIENT)
    basic = demo.client.post("/api/v1/claims", json={"invoice": reference}, headers=headers).json()
    demo.client.post(f"/api/v1/review/{basic['claim_id']}", headers=ADMIN, json={"approve": True})
    assert demo.services.settle.run() == 1
    barrier = threading.Barrier(2)

    def claim(payer: str) -> Any:
        barrier.wait()
        return demo.client.post(
            "/api/v1/claims", json={"invoice": reference, "payer": payer}, headers=headers
        )

    with ThreadPoolExecutor(2) as pool:
        responses = dict(
            zip(
                ("critical", "commercial"), pool.map(claim, ["critical", "commercial"]), strict=True
            )
        )
    codes = sorted(r.status_code for r in responses.values())
    assert codes == [201, 409], [r.text for r in responses.values()]
    (winner,) = [p for p, r in responses.items() if r.status_code == 201]
    (loser,) = [p for p, r in responses.items() if r.status_code == 409]
    assert responses[winner].json()["state"] == "in_review"
    assert responses[loser].json()["error"]["code"] == "invoice_locked"
    invoice_id = bytes.fromhex(basic["invoice_id"][2:])
    state = demo.services.ledger.claim_state(invoice_id)
    assert state.locked_by == demo.services.ledger.payer_address(winner)
    with demo.services.sessions() as db:
        payers = sorted(
            db.scalars(select(models.Claim.payer).where(models.Claim.invoice_id == invoice_id))
        )
    assert payers == sorted(["basic", winner])
