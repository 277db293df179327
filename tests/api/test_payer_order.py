"""Claims of several payers on one invoice are priced in payer order (basic first, then
critical illness, assistance, commercial), each after what the earlier ones will pay; a claim
priced on figures that moved is priced again at settlement, never lost to the cap. In one
batch and simultaneously over HTTP, on SQLite and on PostgreSQL."""

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

OFFICE = {"Authorization": "Bearer dev-admin-token"}
SCALE = 100  # 1.46 million yuan: every payer of the chain pays, and their sum tops the invoice


@pytest.fixture
def demo(tmp_path: Path, database_url: str | None) -> Iterator[Demo]:
    """The demo world, on SQLite and on a real PostgreSQL (``database_url``)."""
    with demo_world(tmp_path, database_url) as world:
        yield world


def _large_invoice_paid_by_basic(demo: Demo) -> tuple[str, bytes, int]:
    reference = upload_copy(
        demo.services, DATASET, BIG_INPATIENT, "0099000002", scale=SCALE, days=40
    )
    basic = demo.client.post(
        "/api/v1/claims", json={"invoice": reference}, headers=demo.sign_in(BIG_INPATIENT)
    ).json()
    assert basic["state"] == "approved", basic
    assert demo.services.settle.run() == 1
    invoice_id = bytes.fromhex(basic["invoice_id"][2:])
    return reference, invoice_id, basic["amount_fen"]


def _batch(demo: Demo, reference: str, payers: list[str]) -> list[dict[str, Any]]:
    id_number = DATASET.citizen_of(BIG_INPATIENT).id_number
    response = demo.client.post(
        "/api/v1/office/claims/batch",
        headers=OFFICE,
        json={
            "claims": [{"id_number": id_number, "invoice": reference, "payer": p} for p in payers]
        },
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _settled(demo: Demo, invoice_id: bytes) -> dict[str, models.Claim]:
    assert demo.services.settle.run() >= 0
    with demo.services.sessions() as db:
        claims = {
            c.payer: c
            for c in db.scalars(select(models.Claim).where(models.Claim.invoice_id == invoice_id))
        }
        payments = {p.claim_id: p.amount_fen for p in db.scalars(select(models.Payment))}
    total = SCALE * DATASET.invoices[BIG_INPATIENT].total
    on_chain = demo.services.ledger.claim_state(invoice_id).paid
    assert on_chain == sum(payments[c.id] for c in claims.values() if c.id in payments) <= total
    assert demo.client.get("/api/v1/audit/reconciliation", headers=OFFICE).json()["consistent"]
    return claims


def test_a_batch_is_priced_in_payer_order_whatever_the_order_sent(demo: Demo) -> None:
    reference, invoice_id, basic = _large_invoice_paid_by_basic(demo)
    total = SCALE * DATASET.invoices[BIG_INPATIENT].total
    # Critical illness first in the batch: commercial prices after it, at once.
    critical, commercial = _batch(demo, reference, ["critical", "commercial"])
    assert (critical["status"], commercial["status"]) == (201, 201)
    assert basic + critical["amount_fen"] + commercial["amount_fen"] <= total
    claims = _settled(demo, invoice_id)
    assert {p: c.state for p, c in claims.items()} == {
        p: "paid" for p in ("basic", "critical", "commercial")
    }
    assert claims["commercial"].amount_fen == commercial["amount_fen"]  # nothing to price again
    assert claims["commercial"].adjudication["already_paid_fen"] == basic + critical["amount_fen"]


def test_a_later_payer_priced_first_is_priced_again_not_rejected(demo: Demo) -> None:
    reference, invoice_id, basic = _large_invoice_paid_by_basic(demo)
    total = SCALE * DATASET.invoices[BIG_INPATIENT].total
    # Commercial first: priced on what the chain paid, before the critical claim existed;
    # the two together top what is left on the invoice.
    commercial, critical = _batch(demo, reference, ["commercial", "critical"])
    assert (commercial["status"], critical["status"]) == (201, 201)
    assert basic + critical["amount_fen"] + commercial["amount_fen"] > total
    claims = _settled(demo, invoice_id)
    assert claims["critical"].state == "paid"
    assert claims["critical"].amount_fen == critical["amount_fen"]
    assert claims["commercial"].state == "paid", claims["commercial"].reason_code
    assert 0 < claims["commercial"].amount_fen < commercial["amount_fen"]
    assert claims["commercial"].adjudication["already_paid_fen"] == basic + critical["amount_fen"]
    with demo.services.sessions() as db:
        states = list(
            db.scalars(
                select(models.ClaimEvent.state)
                .where(models.ClaimEvent.claim_id == claims["commercial"].id)
                .order_by(models.ClaimEvent.id)
            )
        )
        totals = db.get(
            models.PayerAccumulator, (claims["commercial"].citizen_id, "commercial", 2025)
        )
    assert states[-3:] == ["repriced", "settled", "paid"]
    # The yearly totals hold what commercial insurance paid, not what it was first priced at.
    assert totals is not None
    assert (
        sum(pool["paid_fen"] for pool in totals.pools.values()) == claims["commercial"].amount_fen
    )


def test_simultaneous_claims_of_two_payers_are_both_paid(demo: Demo) -> None:
    reference, invoice_id, basic = _large_invoice_paid_by_basic(demo)
    headers = demo.sign_in(BIG_INPATIENT)
    barrier = threading.Barrier(2)

    def claim(payer: str) -> Any:
        barrier.wait()
        return demo.client.post(
            "/api/v1/claims", json={"invoice": reference, "payer": payer}, headers=headers
        )

    with ThreadPoolExecutor(2) as pool:
        responses = list(pool.map(claim, ["commercial", "critical"]))
    assert [r.status_code for r in responses] == [201, 201], [r.text for r in responses]
    claims = _settled(demo, invoice_id)
    assert claims["critical"].state == claims["commercial"].state == "paid"
    assert (
        claims["commercial"].adjudication["already_paid_fen"]
        == basic + claims["critical"].amount_fen
    )
