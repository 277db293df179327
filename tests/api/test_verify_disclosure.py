"""What a verification reveals (issue 11, findings 2 and 3): a wrong check code is answered
exactly as an unknown bill, on the public verification and on the claim channels; a wrong
amount or date is named, never its stored value; only successful verifications by others than
staff are counted; failed attempts are counted apart and limited per client, per citizen and
per bill, also under concurrent attempts. Every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from api.db import models
from api.flows.verify import RateLimiter
from api.flows.verify_failures import FailedAttempts
from api.settings import DEV_ADMIN_TOKEN
from tests.api.conftest import World
from tests.api.test_claims import DATASET, Demo, demo_world

STAFF = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}
BILL = {"bill_code": "33082025", "bill_number": "0000000001"}  # invoice 1 of the world
RIGHT = {**BILL, "check_code": "c00001", "amount_fen": 6450, "issued_on": "2025-03-01"}
# Stored values of invoice 1 that must never be shown to whoever lacks its check code.
STORED = ("c00001", "6450", "64.5", "2025-03-01", "20250301", "H33080200001")


@pytest.fixture
def bills(world: World) -> World:
    """The world with invoices 1 to 3 uploaded and anchored."""
    world.upload([world.item(n) for n in (1, 2, 3)])
    world.services.anchoring.run_once(force=True)
    return world


def limits(world: World, per_minute: int = 600, burst: int = 1000, per_bill: int = 1000) -> None:
    """Failed-attempt limits for one test (the settings' defaults are small), and room for
    every verification the test makes."""
    world.services.rate_limiter = RateLimiter(per_minute=60_000, burst=10_000)
    world.services.verification.failures = FailedAttempts(
        world.services.sessions, per_minute, burst, per_bill
    )


def verify(world: World, body: dict[str, Any], **kwargs: Any) -> Any:
    return world.client.post("/api/v1/verify", json=body, **kwargs)


def pointer_url(code: str, number: str, check: str, yuan: str, day: str) -> str:
    return f"https://pjcy.example.gov.cn/check?d={code}_{number}_{check}_{yuan}_{day}"


def shape(body: dict[str, Any]) -> dict[str, Any]:
    """A verdict less what differs between any two requests: the time taken and the
    reference, which repeats what was sent."""
    out = {k: v for k, v in body.items() if k not in ("milliseconds", "reference")}
    return json.loads(json.dumps(out).replace(body["reference"] or "\0", "REF"))  # type: ignore[no-any-return]


def failures_of(world: World, bill: str) -> int:
    with world.services.sessions() as db:
        return int(
            db.scalar(
                select(func.coalesce(func.sum(models.VerificationFailure.failures), 0)).where(
                    models.VerificationFailure.bill == bill
                )
            )
        )


def named_url(code: str, number: str, check: str, yuan: str, moment: str) -> str:
    """The named form of a pointer, with the e-bill platform interface's names."""
    return (
        f"https://pjcy.example.gov.cn/h5?billBatchCode={code}&billNo={number}&random={check}"
        f"&totalAmt={yuan}&ivcDateTime={moment}"
    )


def sent_as(form: str, bill_number: str, check: str) -> dict[str, Any]:
    """The same elements sent three ways: typed, a pointer URL (d form), a named pointer."""
    if form == "typed":
        return {
            "bill_code": "33082025",
            "bill_number": bill_number,
            "check_code": check,
            "amount_fen": 1,
            "issued_on": "2000-01-01",
        }
    if form == "url":
        return {"qr_text": pointer_url("33082025", bill_number, check, "0.01", "20000101")}
    return {"qr_text": named_url("33082025", bill_number, check, "0.01", "20000101120000000")}


@pytest.mark.parametrize("form", ["typed", "url", "named"])
def test_wrong_check_code_is_answered_as_an_unknown_bill(bills: World, form: str) -> None:
    limits(bills)
    wrong = verify(bills, sent_as(form, "0000000001", "000000"))
    unknown = verify(bills, sent_as(form, "0000009999", "000000"))
    assert wrong.status_code == unknown.status_code == 200
    assert shape(wrong.json()) == shape(unknown.json())
    body = wrong.json()
    assert body["failed_step"] == "inclusion" and body["verification_count"] is None
    assert body["steps"][5]["code"] == "invoice_unknown"
    assert [s["status"] for s in body["steps"][6:]] == ["not_run", "not_run"]
    text = json.dumps(body["steps"], ensure_ascii=False)
    assert not [value for value in STORED if value in text]
    assert "paid" not in text and "claimable" not in text and "locked_by" not in text


def test_right_check_code_names_what_differs_never_its_value(bills: World) -> None:
    limits(bills)
    body = verify(bills, {**RIGHT, "amount_fen": 1, "issued_on": "2000-01-01"}).json()
    assert body["failed_step"] == "record"
    record, status = body["steps"][6], body["steps"][7]
    assert record["details"] == {
        "fields": "amount_fen, issued_on",
        "mismatches": [{"field": "amount_fen"}, {"field": "issued_on"}],
    }
    assert status["status"] == "not_run" and status["details"] == {}
    told = json.dumps([record, status], ensure_ascii=False)
    assert "6450" not in told and "64.5" not in told and "2025-03-01" not in told
    assert body["verification_count"] is None
    ok = verify(bills, RIGHT).json()
    assert ok["valid"] and ok["steps"][7]["details"]["claimable"] == 6450


@pytest.mark.parametrize("form", ["typed", "url", "named"])
def test_the_check_code_is_compared_without_regard_to_case(bills: World, form: str) -> None:
    """Fiscal check codes are hexadecimal, printed in either case: C00001 is c00001."""
    limits(bills)
    if form == "typed":
        body: dict[str, Any] = {**RIGHT, "check_code": "C00001"}
    elif form == "url":
        body = {"qr_text": pointer_url("33082025", "0000000001", "C00001", "64.50", "20250301")}
    else:
        body = {"qr_text": named_url("33082025", "0000000001", "C00001", "64.50", "20250301")}
    verdict = verify(bills, body).json()
    assert verdict["valid"], verdict
    assert verdict["steps"][7]["details"]["claimable"] == 6450
    wrong = verify(bills, {**RIGHT, "check_code": "C00002"}).json()
    assert wrong["steps"][5]["code"] == "invoice_unknown"


TAX_INVOICES = {
    "vat": "01,10,033002100611,12345678,100.00,20250301,12345678901234567890,8F3A,",
    "digital": "01,32,,25332000000012345678,64.50,20250301,,BD21",
    # the comma form once read as a fiscal pointer, naming a bill of this world: refused too
    "other": "01,03,33082025,0000000001,64.50,20250301,c00001,8F3A",
}


@pytest.mark.parametrize("kind", sorted(TAX_INVOICES))
def test_a_tax_invoice_qr_is_answered_that_it_cannot_be_claimed(bills: World, kind: str) -> None:
    limits(bills, per_minute=1, burst=1)  # one failed attempt would use the budget up
    for _ in range(3):  # a wrong kind of code is no guess at a check code: never limited
        response = verify(bills, {"qr_text": TAX_INVOICES[kind]})
        assert response.status_code == 200, response.text
    body = response.json()
    assert not body["valid"] and body["failed_step"] == "parse"
    assert body["reference"] is None and body["invoice_id"] is None
    parse = body["steps"][1]
    assert parse["code"] == "tax_invoice_qr" and parse["details"]["kind"] == kind
    assert parse["message_zh"].endswith("的二维码，不是医疗电子票据，不能在此报销")
    assert parse["message_en"].endswith("not of a medical e-bill: it cannot be claimed here")
    name = {"vat": "增值税发票", "digital": "全电发票", "other": "税务发票"}[kind]
    assert parse["message_zh"].startswith(f"这是{name}")
    assert [s["status"] for s in body["steps"][2:]] == ["not_run"] * 6
    assert failures_of(bills, "33082025-0000000001") == 0
    assert verify(bills, {**RIGHT, "check_code": "000000"}).status_code == 200  # budget intact


def test_only_successful_verifications_by_others_than_staff_count(bills: World) -> None:
    limits(bills)
    for _ in range(25):  # finding 3: 21 were enough to push a claim into review
        assert not verify(bills, {**RIGHT, "check_code": "000000"}).json()["valid"]
    assert not verify(bills, {**RIGHT, "amount_fen": 1}).json()["valid"]
    by_staff = verify(bills, RIGHT, headers=STAFF).json()
    assert by_staff["valid"] and by_staff["verification_count"] == 0  # shown, not counted
    first = verify(bills, RIGHT).json()
    assert first["valid"] and first["verification_count"] == 1
    assert verify(bills, RIGHT, headers=STAFF).json()["verification_count"] == 1
    # The failures are counted apart, per bill; an unknown token is an anonymous verifier.
    assert failures_of(bills, "33082025-0000000001") == 25
    unknown_token = {"Authorization": "Bearer zcs_not-a-token"}
    assert verify(bills, RIGHT, headers=unknown_token).json()["verification_count"] == 2
    # Only "Bearer <token>" is a token: a bare staff token is an anonymous verifier too.
    bare_staff = {"Authorization": DEV_ADMIN_TOKEN}
    assert verify(bills, RIGHT, headers=bare_staff).json()["verification_count"] == 3
    with bills.services.sessions() as db:
        counted = bills.services.verification.counts_of(
            db, [bytes.fromhex(first["invoice_id"][2:])]
        )
    assert list(counted.values()) == [3]


def test_failed_attempts_are_limited_per_bill_for_everybody(bills: World) -> None:
    limits(bills, per_bill=3)
    for _ in range(3):
        assert verify(bills, {**RIGHT, "check_code": "000000"}).status_code == 200
    for body in ({**RIGHT, "check_code": "000000"}, RIGHT):  # the right code too: no oracle
        limited = verify(bills, body)
        assert limited.status_code == 429, limited.text
        error = limited.json()["error"]
        assert error["code"] == "bill_rate_limited"
        assert 0 < error["retry_after_seconds"] <= 3600
        assert 1 <= int(limited.headers["Retry-After"]) <= 3600
    pointer = pointer_url("33082025", "0000000001", "c00001", "64.50", "20250301")
    assert verify(bills, {"qr_text": pointer}).status_code == 429  # the same bill, as a QR
    assert failures_of(bills, "33082025-0000000001") == 3
    other = {**RIGHT, "bill_number": "0000000002", "check_code": "c00002"}
    assert verify(bills, other).json()["valid"]  # other bills are not affected
    assert verify(bills, RIGHT, headers=STAFF).json()["valid"]  # nor staff


def test_failed_attempts_are_limited_per_client(bills: World) -> None:
    limits(bills, per_minute=1, burst=3)
    for _ in range(5):  # successful verifications take nothing from the failures' budget
        assert verify(bills, RIGHT).json()["valid"]
    for n in (1, 2, 3):
        assert verify(bills, {**RIGHT, "check_code": f"00000{n}"}).status_code == 200
    for body in ({**RIGHT, "check_code": "000004"}, RIGHT):  # decided before the outcome
        limited = verify(bills, body)
        assert limited.status_code == 429
        assert limited.json()["error"]["code"] == "rate_limited"
        assert int(limited.headers["Retry-After"]) >= 1
    assert verify(bills, RIGHT, headers=STAFF).json()["valid"]  # staff are not limited


def test_concurrent_failures_never_pass_the_bill_limit(bills: World) -> None:
    limits(bills, per_bill=5)
    statuses: list[int] = []
    start = threading.Barrier(16)

    def attempt(n: int) -> None:
        start.wait()
        response = verify(bills, {**RIGHT, "check_code": f"w{n:05d}"})
        statuses.append(response.status_code)

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] * 5 + [429] * 11
    assert failures_of(bills, "33082025-0000000001") == 5


# -- the claim channels ---------------------------------------------------------------------------


@pytest.fixture
def demo(tmp_path: Path, database_url: str | None) -> Iterator[Demo]:
    with demo_world(tmp_path, database_url) as world:
        yield world


def owner_and_other() -> tuple[int, int]:
    """An invoice and an invoice of another citizen."""
    mine = 0
    other = next(
        i
        for i in range(len(DATASET.invoices))
        if DATASET.citizen_of(i).id_number != DATASET.citizen_of(mine).id_number
    )
    return mine, other


def pointer_of(index: int, check: str | None = None, number: str | None = None) -> str:
    invoice = DATASET.invoices[index]
    yuan = f"{invoice.total // 100}.{invoice.total % 100:02d}"
    return pointer_url(
        invoice.bill_code,
        number or invoice.bill_number,
        check or invoice.check_code,
        yuan,
        invoice.issued_at.strftime("%Y%m%d"),
    )


def test_claim_with_a_wrong_check_code_is_refused_as_an_unknown_invoice(demo: Demo) -> None:
    mine, other = owner_and_other()
    headers = demo.sign_in(mine)

    def claim(text: str) -> Any:
        return demo.client.post("/api/v1/claims", headers=headers, json={"qr_text": text})

    theirs_wrong = claim(pointer_of(other, check="000000"))
    theirs_right = claim(pointer_of(other))
    unknown = claim(pointer_of(other, number="0999999999"))
    mine_wrong = claim(pointer_of(mine, check="000000"))
    answers = [theirs_wrong, theirs_right, unknown, mine_wrong]
    assert [a.status_code for a in answers] == [404] * 4, [a.text for a in answers]
    assert len({json.dumps(a.json(), sort_keys=True) for a in answers}) == 1
    assert unknown.json()["error"]["code"] == "invoice_not_found"
    office = demo.client.post(
        "/api/v1/office/claims",
        headers=STAFF,
        json={
            "qr_text": pointer_of(mine, check="000000"),
            "id_number": DATASET.citizen_of(mine).id_number,
        },
    )
    assert office.status_code == 404 and office.json() == unknown.json()
    assert claim(pointer_of(mine)).status_code == 201


def test_a_claim_with_a_tax_invoice_qr_is_refused_with_its_sentence(demo: Demo) -> None:
    mine, _ = owner_and_other()
    refused = demo.client.post(
        "/api/v1/claims", headers=demo.sign_in(mine), json={"qr_text": TAX_INVOICES["vat"]}
    )
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["code"] == "verification_failed"
    assert error["message"] == (
        "This is the QR code of a VAT invoice (增值税发票), not of a medical e-bill:"
        " it cannot be claimed here"
    )
    assert error["step"] == "parse" and error["step_code"] == "tax_invoice_qr"
    assert error["message_zh"] == "这是增值税发票的二维码，不是医疗电子票据，不能在此报销"


def test_walking_other_peoples_pointers_hits_the_rate_limit(demo: Demo) -> None:
    mine, other = owner_and_other()
    headers = demo.sign_in(mine)
    statuses = [
        demo.client.post(
            "/api/v1/claims",
            headers=headers,
            json={"qr_text": pointer_of(other, check=f"{n:06d}")},
        ).status_code
        for n in range(40)
    ]
    burst = demo.services.settings.verify_failures_burst
    assert statuses[:burst] == [404] * burst
    assert set(statuses[burst:]) == {429}
    limited = demo.client.post(
        "/api/v1/claims", headers=headers, json={"qr_text": pointer_of(mine)}
    )
    assert limited.status_code == 429  # decided before the attempt: even one's own invoice
    assert limited.json()["error"]["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) >= 1
    other_citizen = demo.sign_in(other)  # per citizen: another is not limited
    assert (
        demo.client.post(
            "/api/v1/claims", headers=other_citizen, json={"qr_text": pointer_of(other)}
        ).status_code
        == 201
    )


def test_failed_verifications_do_not_push_a_claim_into_review(demo: Demo) -> None:
    mine, _ = owner_and_other()
    invoice = DATASET.invoices[mine]
    wrong = {
        "bill_code": invoice.bill_code,
        "bill_number": invoice.bill_number,
        "check_code": "000000",
    }
    for _ in range(25):  # anonymous; beyond the limits they are refused, and never counted
        demo.client.post("/api/v1/verify", json=wrong)
    claim = demo.claim(mine).json()
    assert "verified_often" not in [h["code"] for h in claim["audit_hits"]], claim
    assert claim["state"] != "in_review"
