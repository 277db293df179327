"""Reconciliation compares payments from the chain's side too: every claim the chain settled
(its InvoiceSettled events) against the database's payment of it, so a payment row deleted,
changed or invented is reported, naming the invoice and the claim; a claim the chain paid while
the database still records it as settling is in flight, not a mismatch."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, update

from api.db import models
from tests.api.test_claims import BIG_INPATIENT, OUTPATIENT, Demo, demo_world

AUDITOR = {"Authorization": "Bearer dev-admin-token"}


@pytest.fixture
def demo(tmp_path: Path, database_url: str | None) -> Iterator[Demo]:
    with demo_world(tmp_path, database_url) as world:
        yield world


def _reconciliation(demo: Demo) -> dict[str, Any]:
    response = demo.client.get("/api/v1/audit/reconciliation", headers=AUDITOR)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _paid_claim(demo: Demo) -> tuple[str, bytes, int]:
    """One claim settled on chain and paid: its id, its invoice and the amount paid."""
    claim = demo.claim(BIG_INPATIENT)
    assert claim.status_code == 201, claim.text
    assert demo.services.settle.run() == 1
    assert _reconciliation(demo)["consistent"]
    return (
        claim.json()["claim_id"],
        demo.invoice_id(BIG_INPATIENT),
        demo.paid_on_chain(BIG_INPATIENT),
    )


def test_a_deleted_payment_row_is_reported(demo: Demo) -> None:
    claim_id, invoice_id, amount = _paid_claim(demo)
    with demo.services.sessions() as db:  # an attacker with access to the database
        assert db.execute(delete(models.Payment)).rowcount == 1  # type: ignore[attr-defined]
        db.commit()
    dirty = _reconciliation(demo)
    assert dirty["consistent"] is False
    assert dirty["payments_checked"] == 1
    assert dirty["payment_mismatches"] == [
        {
            "invoice_id": "0x" + invoice_id.hex(),
            "claim_id": claim_id,
            "payer": "basic",
            "database_paid": None,
            "chain_paid": amount,
            "reason": "the chain paid this claim and the database has no payment of it",
        },
        {
            "invoice_id": "0x" + invoice_id.hex(),
            "claim_id": None,
            "payer": None,
            "database_paid": 0,
            "chain_paid": amount,
            "reason": "the invoice's paid amount on chain differs from its payments",
        },
    ]


def test_a_changed_payment_amount_names_the_claim(demo: Demo) -> None:
    claim_id, invoice_id, amount = _paid_claim(demo)
    with demo.services.sessions() as db:
        db.execute(update(models.Payment).values(amount_fen=amount - 1))
        db.commit()
    dirty = _reconciliation(demo)
    assert dirty["consistent"] is False
    assert [
        (m["claim_id"], m["database_paid"], m["chain_paid"]) for m in dirty["payment_mismatches"]
    ] == [
        (claim_id, amount - 1, amount),
        (None, amount - 1, amount),
    ]
    assert {m["invoice_id"] for m in dirty["payment_mismatches"]} == {"0x" + invoice_id.hex()}


def test_a_payment_the_chain_never_made_is_reported(demo: Demo) -> None:
    _paid_claim(demo)
    claim = demo.claim(OUTPATIENT)
    assert claim.status_code == 201, claim.text
    claim_id = claim.json()["claim_id"]  # approved, never sent to the chain
    with demo.services.sessions() as db:
        db.add(
            models.Payment(
                claim_id=claim_id,
                amount_fen=claim.json()["amount_fen"],
                tx_hash=b"\x01" * 32,
                paid_at=datetime.now(UTC),
            )
        )
        db.commit()
    dirty = _reconciliation(demo)
    assert dirty["consistent"] is False
    assert dirty["payments_checked"] == 2
    named = [(m["claim_id"], m["chain_paid"], m["reason"]) for m in dirty["payment_mismatches"]]
    assert named == [
        (claim_id, None, "the database has a payment the chain never made"),
        (None, 0, "the invoice's paid amount on chain differs from its payments"),
    ]


def test_a_claim_paid_on_chain_and_still_settling_is_in_flight(demo: Demo) -> None:
    claim_id, _, amount = _paid_claim(demo)
    # What a crash between the chain's payment and the database's record of it leaves.
    with demo.services.sessions() as db:
        db.execute(delete(models.Payment))
        db.execute(update(models.Claim).values(state="settling"))
        db.commit()
    in_flight = _reconciliation(demo)
    assert in_flight["consistent"] is True
    assert in_flight["payments_in_flight"] == [claim_id]
    assert in_flight["payment_mismatches"] == []
    demo.services.settle.run()  # the next round records the payment
    settled = _reconciliation(demo)
    assert settled["consistent"] and settled["payments_in_flight"] == []
    assert settled["payments_checked"] == 1
    with demo.services.sessions() as db:
        assert [p.amount_fen for p in db.query(models.Payment)] == [amount]
