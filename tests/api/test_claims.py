"""One-tap claims end to end on the demo data: adjudicated, settled on chain, paid; refused
twice through any channel; never paid above the invoice total, whoever asks."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.bootstrap import Services, open_services
from api.demo import data as demo_data
from api.demo.seed import DEMO_CITIZEN_PASSWORD, seed_demo
from api.read.invoices import payload_of
from api.settings import Settings
from verifier.qr import encode_payload, qr_png

DATASET = demo_data.generate(2025, "small")
BIG_INPATIENT = 3  # 33082502-0001255131, 14,572.55 yuan at a tertiary hospital
OUTPATIENT = 0  # 33082501-0001255130, 385.68 yuan


@dataclass
class Demo:
    services: Services
    client: TestClient

    def sign_in(self, index: int) -> dict[str, str]:
        citizen = DATASET.citizen_of(index)
        body = self.client.post(
            "/api/v1/citizens/session",
            json={"id_number": citizen.id_number, "password": DEMO_CITIZEN_PASSWORD},
        ).json()
        return {"Authorization": f"Bearer {body['token']}"}

    def claim(self, index: int, payer: str = "basic", **body: Any) -> Any:
        invoice = DATASET.invoices[index]
        body = body or {"invoice": f"{invoice.bill_code}-{invoice.bill_number}"}
        return self.client.post(
            "/api/v1/claims", json={**body, "payer": payer}, headers=self.sign_in(index)
        )

    def invoice_id(self, index: int) -> bytes:
        from verifier.canonical import invoice_id

        invoice = DATASET.invoices[index]
        return invoice_id(invoice.hospital, invoice.bill_code, invoice.bill_number)

    def qr_text(self, index: int) -> str:
        from api.db import models

        with self.services.sessions() as db:
            row = db.get(models.Invoice, self.invoice_id(index))
        assert row is not None
        return encode_payload(payload_of(self.services.domain, row))

    def verify_often(self, index: int) -> None:
        """Verified unusually often: an audit flag for staff, never a review on its own."""
        text = self.qr_text(index)
        for _ in range(25):
            self.services.verification.verify(text)

    def paid_on_chain(self, index: int) -> int:
        return self.services.ledger.claim_state(self.invoice_id(index)).paid


@pytest.fixture
def demo(tmp_path: Path, database_url: str | None) -> Iterator[Demo]:
    """The demo world, on SQLite and on a real PostgreSQL (``database_url``)."""
    with demo_world(tmp_path, database_url) as world:
        yield world


@contextmanager
def demo_world(tmp_path: Path, database_url: str | None = None) -> Iterator[Demo]:
    settings = Settings(data_dir=tmp_path, anchor_interval_ms=0, database_url=database_url)
    services = open_services(settings)
    # The demo data as generated (issued in 2025), claimed in mid-January 2026: within the
    # 365-day deadline of the invoices used here.
    assert seed_demo(services, end=date(2025, 1, 1)) == len(DATASET.invoices)
    services.claim.clock = lambda: datetime(2026, 1, 15, 10, tzinfo=UTC)
    with TestClient(create_app(settings, services, background=False)) as client:
        yield Demo(services, client)


def test_one_tap_claim_is_adjudicated_settled_and_paid(demo: Demo) -> None:
    response = demo.claim(BIG_INPATIENT)
    assert response.status_code == 201, response.text
    claim = response.json()
    assert claim["state"] == "approved", claim["audit_hits"]
    assert 0 < claim["amount_fen"] < DATASET.invoices[BIG_INPATIENT].total
    steps = [s["code"] for s in claim["adjudication"]["steps"]]
    assert steps and all(s["zh"] and s["en"] for s in claim["adjudication"]["steps"])
    lines = claim["adjudication"]["lines"]
    assert lines and all(ln["zh"] and ln["en"] for ln in lines)  # rendered when read
    assert all(
        ln["in_policy_fen"] + ln["self_share_fen"] + ln["out_of_policy_fen"] + ln["excluded_fen"]
        == ln["amount_fen"]
        for ln in lines
    )
    # The lines are counted again from the invoice and the stored class rules when read:
    # they add up to the categories decided at adjudication.
    for category in claim["adjudication"]["categories"]:
        mine = [ln for ln in lines if ln["class"] == category["item_class"]]
        for figure in ("amount_fen", "in_policy_fen", "self_share_fen", "excluded_fen"):
            assert sum(ln[figure] for ln in mine) == category[figure], figure
    assert demo.services.settle.run() == 1
    headers = demo.sign_in(BIG_INPATIENT)
    detail = demo.client.get(f"/api/v1/claims/{claim['claim_id']}", headers=headers).json()
    assert detail["state"] == "paid"
    assert detail["payment"]["amount_fen"] == claim["amount_fen"]
    assert [h["state"] for h in detail["history"]] == [
        "submitted",
        "verified",
        "adjudicated",
        "approved",
        "settled",
        "paid",
    ]
    assert demo.paid_on_chain(BIG_INPATIENT) == claim["amount_fen"]
    # Settling again pays nothing more: the payment exists once.
    assert demo.services.settle.run() == 0
    mine = demo.client.get("/api/v1/claims/mine", headers=headers).json()
    assert [c["claim_id"] for c in mine] == [claim["claim_id"]]


def test_second_claim_is_refused_through_any_channel(demo: Demo) -> None:
    first = demo.claim(BIG_INPATIENT).json()
    text = demo.qr_text(BIG_INPATIENT)
    office = {"Authorization": "Bearer dev-admin-token"}
    invoice = DATASET.invoices[BIG_INPATIENT]
    for response in (
        demo.claim(BIG_INPATIENT),
        demo.client.post(
            "/api/v1/office/claims",
            headers=office,
            json={
                "id_number": DATASET.citizen_of(BIG_INPATIENT).id_number,
                "payer": "basic",
                "invoice": f"{invoice.bill_code}-{invoice.bill_number}",
            },
        ),
        demo.claim(BIG_INPATIENT, qr_text=text),
        demo.client.post(
            "/api/v1/claims/photo?payer=basic",
            content=qr_png(text, scale=4),
            headers={**demo.sign_in(BIG_INPATIENT), "Content-Type": "image/png"},
        ),
    ):
        assert response.status_code == 409, response.text
        error = response.json()["error"]
        assert error["code"] == "duplicate_claim"
        assert error["first_claim"] == first["claim_id"]


def test_only_the_patient_can_claim_and_others_learn_nothing(demo: Demo) -> None:
    invoice = DATASET.invoices[BIG_INPATIENT]
    other = next(
        i
        for i in range(len(DATASET.invoices))
        if DATASET.citizen_of(i).id_number != DATASET.citizen_of(BIG_INPATIENT).id_number
    )
    theirs = demo.client.post(
        "/api/v1/claims",
        headers=demo.sign_in(other),
        json={"invoice": f"{invoice.bill_code}-{invoice.bill_number}"},
    )
    unknown = demo.client.post(
        "/api/v1/claims", headers=demo.sign_in(other), json={"invoice": "33082501-0999999999"}
    )
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json()["error"]["code"] == unknown.json()["error"]["code"]
    assert theirs.json()["error"]["message"] == unknown.json()["error"]["message"]


def test_other_payers_wait_for_basic_insurance(demo: Demo) -> None:
    early = demo.claim(BIG_INPATIENT, "commercial")
    assert early.status_code == 409 and early.json()["error"]["code"] == "basic_first"
    basic = demo.claim(BIG_INPATIENT, "basic").json()
    pending = demo.claim(BIG_INPATIENT, "commercial").json()["error"]
    assert (pending["code"], pending["basic_claim"]) == ("basic_first", basic["claim_id"])
    demo.services.settle.run()
    assert demo.claim(BIG_INPATIENT, "commercial").status_code == 201


def test_payers_in_chain_never_pay_above_the_total(demo: Demo) -> None:
    total = DATASET.invoices[BIG_INPATIENT].total
    basic = demo.claim(BIG_INPATIENT, "basic").json()
    demo.services.settle.run()
    commercial = demo.claim(BIG_INPATIENT, "commercial").json()
    demo.services.settle.run()
    critical = demo.claim(BIG_INPATIENT, "critical")
    demo.services.settle.run()
    paid = demo.paid_on_chain(BIG_INPATIENT)
    assert basic["state"] in ("approved", "paid") and paid <= total
    amounts = [basic["amount_fen"], commercial["amount_fen"]]
    if critical.status_code == 201:
        amounts.append(critical.json()["amount_fen"])
    assert paid <= total and sum(a for a in amounts) >= paid
    # Straight to the contract: the remaining amount plus one fen is refused by the ledger.
    from chain import errors
    from chain.model import InvoiceLeaf
    from chain.sequencer import SettlementRequest

    with demo.services.sessions() as db:
        from api.db import models

        row = db.get(models.Invoice, demo.invoice_id(BIG_INPATIENT))
        assert row is not None
    leaf = InvoiceLeaf(row.invoice_id, row.record_hash, row.hospital, row.total)
    (outcome,) = demo.services.ledger.settle(
        "assistance",
        [SettlementRequest("direct", leaf, total - paid + 1, row.signature)],
    )
    assert isinstance(outcome.error, errors.PaidAboveTotal)
    assert demo.paid_on_chain(BIG_INPATIENT) == paid


def test_simultaneous_identical_claims_give_one_claim(demo: Demo) -> None:
    headers = demo.sign_in(BIG_INPATIENT)
    invoice = DATASET.invoices[BIG_INPATIENT]
    body = {"invoice": f"{invoice.bill_code}-{invoice.bill_number}", "payer": "basic"}
    statuses: list[int] = []
    barrier = threading.Barrier(8)

    def claim() -> None:
        barrier.wait()
        statuses.append(demo.client.post("/api/v1/claims", json=body, headers=headers).status_code)

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [201] + [409] * 7
    demo.services.settle.run()
    with demo.services.sessions() as db:
        from sqlalchemy import func, select

        from api.db import models

        assert db.scalar(select(func.count()).select_from(models.Payment)) == 1


def _flagged_claim(demo: Demo, index: int) -> Any:
    """A claim of a copy of invoice ``index`` whose first line has a code in no catalogue."""
    from tests.api.flagged import upload_copy

    reference = upload_copy(demo.services, DATASET, index, "0099000001", flagged=True)
    return demo.claim(index, invoice=reference).json()


def test_flagged_claim_waits_for_review_under_a_lock(demo: Demo) -> None:
    claim = _flagged_claim(demo, BIG_INPATIENT)
    assert claim["state"] == "in_review"
    assert "unknown_code" in [h["code"] for h in claim["audit_hits"]]
    state = demo.services.ledger.claim_state(bytes.fromhex(claim["invoice_id"][2:]))
    assert state.locked_by == demo.services.ledger.payer_address("basic")
    reviewer = {"Authorization": "Bearer dev-admin-token"}
    queue = demo.client.get("/api/v1/review/queue", headers=reviewer).json()
    assert [c["claim_id"] for c in queue] == [claim["claim_id"]]
    assert demo.client.get("/api/v1/review/queue").status_code == 401
    refused = demo.client.post(
        f"/api/v1/review/{claim['claim_id']}", headers=reviewer, json={"approve": False}
    )
    assert refused.status_code == 422  # a rejection needs a reason
    approved = demo.client.post(
        f"/api/v1/review/{claim['claim_id']}",
        headers=reviewer,
        json={"approve": True, "reason": "verified by phone"},
    ).json()
    assert approved["state"] == "approved"
    assert demo.services.settle.run() == 1
    state = demo.services.ledger.claim_state(bytes.fromhex(claim["invoice_id"][2:]))
    assert state.locked_by is None and state.paid == claim["amount_fen"]


def test_rejected_review_releases_the_lock(demo: Demo) -> None:
    claim = _flagged_claim(demo, BIG_INPATIENT)
    reviewer = {"Authorization": "Bearer dev-admin-token"}
    done = demo.client.post(
        f"/api/v1/review/{claim['claim_id']}",
        headers=reviewer,
        json={"approve": False, "reason": "duplicate billing"},
    ).json()
    assert done["state"] == "rejected" and done["reason_code"] == "duplicate billing"
    state = demo.services.ledger.claim_state(bytes.fromhex(claim["invoice_id"][2:]))
    assert state.locked_by is None and state.paid == 0


def test_reconciliation_catches_a_tampered_database(demo: Demo) -> None:
    from sqlalchemy import update

    from api.db import models

    demo.claim(BIG_INPATIENT)
    demo.services.settle.run()
    auditor = {"Authorization": "Bearer dev-admin-token"}
    clean = demo.client.get("/api/v1/audit/reconciliation", headers=auditor).json()
    assert clean["consistent"] and clean["checkpoints_checked"] >= 1
    assert clean["payments_checked"] == 1
    assert clean["log_size_in_database"] == clean["anchored_size_on_chain"] == len(DATASET.invoices)
    key = demo.invoice_id(BIG_INPATIENT)
    with demo.services.sessions() as db:
        db.execute(
            update(models.Invoice)
            .where(models.Invoice.invoice_id == key)
            .values(total=models.Invoice.total + 1)
        )
        db.execute(update(models.Payment).values(amount_fen=models.Payment.amount_fen + 5))
        db.commit()
    dirty = demo.client.get("/api/v1/audit/reconciliation", headers=auditor).json()
    assert not dirty["consistent"]
    assert dirty["checkpoint_mismatches"] and dirty["payment_mismatches"]
    # Exactly the changed invoice is named, not just the checkpoints it falls under.
    assert dirty["changed_invoices"] == [
        {
            "leaf_index": dirty["changed_invoices"][0]["leaf_index"],
            "invoice_id": "0x" + key.hex(),
            "change": "altered",
        }
    ]
    assert dirty["payment_mismatches"][0]["database_paid"] == (
        dirty["payment_mismatches"][0]["chain_paid"] + 5
    )
    assert demo.client.get("/api/v1/audit/reconciliation").status_code == 401


def test_stats_for_the_auditor(demo: Demo) -> None:
    demo.claim(BIG_INPATIENT)
    demo.claim(OUTPATIENT)
    demo.services.settle.run()
    # A third claim, on a small invoice: whatever the policy decides, the figures must agree.
    small = 11  # 66.67 yuan
    demo.claim(small)
    demo.services.settle.run()
    stats = demo.client.get(
        "/api/v1/audit/stats", headers={"Authorization": "Bearer dev-admin-token"}
    ).json()
    states = stats["claims_by_state"]
    assert sum(states.values()) == 3 and states.get("paid", 0) >= 1
    decided = states.get("paid", 0) + states.get("rejected", 0)
    assert stats["approval_rate"] == round(states.get("paid", 0) / decided, 4)
    assert stats["seconds_to_payment_mean"] is not None and stats["seconds_to_payment_mean"] >= 0
    assert sum(d["invoices"] for d in stats["per_day"]) == len(DATASET.invoices)
    claimed_day = next(d for d in stats["per_day"] if d["claims"])
    assert claimed_day["claims"] == 3
    assert claimed_day["approval_rate_permille"] == states.get("paid", 0) * 1000 // 3
