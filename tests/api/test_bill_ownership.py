"""Bill numbers belong to the hospital that issued them (issue 11, finding 12).

Bill codes are shared by every hospital of a region, so two hospitals may issue the same bill
code and number. Before, the invoice id was SHA-256(bill code ‖ number) and the database held
(bill code, number) unique: whoever uploaded a number first owned it, and the real invoice was
refused with 409 for ever. Here hospital A and hospital B both issue one bill code and number,
each with its own content, over HTTP, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from api.adapters.hospital_files import sign_item
from api.demo import data as demo_data
from tests.api.conftest import HOSPITAL, OTHER_HOSPITAL, World
from tests.api.test_claims import BIG_INPATIENT, DATASET
from verifier.canonical import invoice_id, patient_commitment

# The content is a demo inpatient stay (catalogue items, 14,572.55 yuan: approved and paid),
# issued as bill 33082502-0009999999 by each hospital to a patient of its own.
STAY = demo_data.invoice_json(DATASET.invoices[BIG_INPATIENT])
PATIENTS = {HOSPITAL: DATASET.citizen_of(BIG_INPATIENT), OTHER_HOSPITAL: DATASET.citizens[1]}
CODE, NUMBER = STAY["bill_code"], "0009999999"
REFERENCE = f"{CODE}-{NUMBER}"
STAFF = {"Authorization": "Bearer dev-admin-token"}
YUAN = f"{STAY['total'] // 100}.{STAY['total'] % 100:02d}"
DAY = STAY["issued_at"][:10].replace("-", "")  # issued in China Standard Time


def _item(world: World, hospital: str, check_code: str, **changes: Any) -> dict[str, Any]:
    """Bill CODE-NUMBER of ``hospital`` for its patient, signed by its key."""
    citizen = PATIENTS[hospital]
    salt = hashlib.sha256(hospital.encode()).digest()[:16]
    pat = {"id_number": citizen.id_number, "name": citizen.name, "salt": salt.hex()}
    invoice = {
        **STAY,
        "hospital": hospital,
        "bill_number": NUMBER,
        "check_code": check_code,
        "patient_commitment": "0x" + patient_commitment(citizen.id_number, salt).hex(),
        **changes,
    }
    key = world.hospital.key if hospital == HOSPITAL else world.other.key
    return sign_item({"invoice": invoice, "patient": pat}, key.key, world.services.domain)


def _as(world: World, hospital: str) -> dict[str, str]:
    api_key = world.hospital.api_key if hospital == HOSPITAL else world.other.api_key
    return {"X-API-Key": api_key}


def _sign_in(world: World, hospital: str) -> dict[str, str]:
    citizen = PATIENTS[hospital]
    world.services.citizens.enrol(
        citizen.id_number, citizen.name, citizen.sex, citizen.birth_date, "pw"
    )
    body = world.client.post(
        "/api/v1/citizens/session", json={"id_number": citizen.id_number, "password": "pw"}
    ).json()
    return {"Authorization": f"Bearer {body['token']}"}


def _void(world: World, by: str, key: str, target: bytes) -> Any:
    """``by`` asks to void the invoice ``key`` with its own genuine signature over ``target``."""
    signer = world.hospital.key if by == HOSPITAL else world.other.key
    red = b"\x05" * 32
    with world.services.ledger.exclusive() as parts:  # the hospital signs, at its office
        signature = parts.session.ledger.sign_void(signer, target, red)
    return world.client.post(
        f"/api/v1/invoices/{key}/void",
        json={"red_invoice_id": "0x" + red.hex(), "signature": "0x" + signature.hex()},
        headers=_as(world, by),
    )


def test_two_hospitals_issue_the_same_bill_number(world: World) -> None:
    a_id, b_id = (invoice_id(h, CODE, NUMBER) for h in (HOSPITAL, OTHER_HOSPITAL))
    a_item = _item(world, HOSPITAL, "A7a7A7")
    b_item = _item(world, OTHER_HOSPITAL, "B8b8B8")

    # Both accepted, neither a conflict; each under its own id.
    for item, hospital, expected in ((a_item, HOSPITAL, a_id), (b_item, OTHER_HOSPITAL, b_id)):
        receipt = world.upload([item], _as(world, hospital)["X-API-Key"])["items"][0]
        assert receipt["status"] == "accepted", receipt
        assert receipt["invoice_id"] == "0x" + expected.hex()
    world.services.anchoring.run_once(force=True)

    # The same hospital uploading the number again with other content is still a conflict.
    again = world.upload([_item(world, HOSPITAL, "Z9z9Z9")])["items"][0]
    assert again["code"] == "conflict" and again["http_status"] == 409
    assert world.upload([a_item])["items"][0]["status"] == "duplicate"

    # Each hospital reads its own under the bare reference; staff must name the hospital.
    for hospital, expected in ((HOSPITAL, a_id), (OTHER_HOSPITAL, b_id)):
        mine = world.client.get(f"/api/v1/invoices/{REFERENCE}", headers=_as(world, hospital))
        assert mine.status_code == 200 and mine.json()["status"] == "anchored"
        assert mine.json()["invoice_id"] == "0x" + expected.hex()
        named = world.client.get(f"/api/v1/invoices/{hospital}:{REFERENCE}", headers=STAFF)
        assert named.json()["invoice_id"] == "0x" + expected.hex()
    both = world.client.get(f"/api/v1/invoices/{REFERENCE}", headers=STAFF)
    assert both.status_code == 409 and both.json()["error"]["code"] == "invoice_key_ambiguous"

    # Each verifies on its own fingerprint.
    for hospital, expected in ((HOSPITAL, a_id), (OTHER_HOSPITAL, b_id)):
        qr = world.client.get(f"/api/v1/invoices/{REFERENCE}/qr", headers=_as(world, hospital))
        verdict = world.client.post("/api/v1/verify", json={"qr_text": qr.json()["payload"]})
        body = verdict.json()
        assert body["valid"], body
        assert body["invoice_id"] == "0x" + expected.hex()

    # A typed reference or a fiscal pointer carries no hospital: the check code picks the bill.
    for check_code, expected in (("A7a7A7", a_id), ("B8b8B8", b_id)):
        typed = {"bill_code": CODE, "bill_number": NUMBER, "check_code": check_code}
        body = world.client.post("/api/v1/verify", json=typed).json()
        assert body["valid"] and body["invoice_id"] == "0x" + expected.hex(), body
        url = f"https://pjcy.example.gov.cn/check?d={CODE}_{NUMBER}_{check_code}_{YUAN}_{DAY}"
        body = world.client.post("/api/v1/verify", json={"qr_text": url}).json()
        assert body["invoice_id"] == "0x" + expected.hex(), body
    # A wrong check code is answered exactly as a bill nobody issued.
    wrong = {"bill_code": CODE, "bill_number": NUMBER, "check_code": "000000"}
    unknown = {"bill_code": CODE, "bill_number": "0000009999", "check_code": "A7a7A7"}
    answers = [world.client.post("/api/v1/verify", json=body).json() for body in (wrong, unknown)]
    for answer in answers:
        assert not answer["valid"] and answer["failed_step"] == "inclusion"
        assert answer["invoice_id"] is None and answer["verification_count"] is None
    first, second = ([(s["step"], s["status"], s["code"], s["details"]) for s in a["steps"]]
                     for a in answers)  # fmt: skip
    assert first == second
    assert first[5] == ("inclusion", "failed", "invoice_unknown", {})

    # Neither can void the other's, by id or by HOSPITAL:BILLCODE-BILLNUMBER, even with its own
    # genuine signature: another hospital's invoice does not exist for it.
    for by, key, target in (
        (OTHER_HOSPITAL, "0x" + a_id.hex(), a_id),
        (OTHER_HOSPITAL, f"{HOSPITAL}:{REFERENCE}", a_id),
        (HOSPITAL, "0x" + b_id.hex(), b_id),
        (HOSPITAL, f"{OTHER_HOSPITAL}:{REFERENCE}", b_id),
    ):
        refused = _void(world, by, key, target)
        assert refused.status_code == 404, refused.text
        assert refused.json()["error"]["code"] == "invoice_not_found"
    ledger = world.services.ledger
    assert not ledger.claim_state(a_id).voided and not ledger.claim_state(b_id).voided

    # Each is claimed by its own patient (by the bare reference, and by the id) and paid; the
    # bare reference names the citizen's own bill, and another's is not found.
    world.services.claim.clock = lambda: datetime(2025, 3, 10, 10, tzinfo=UTC)
    citizens = {h: _sign_in(world, h) for h in (HOSPITAL, OTHER_HOSPITAL)}
    theirs = world.client.post(
        "/api/v1/claims",
        json={"invoice": f"{OTHER_HOSPITAL}:{REFERENCE}", "payer": "basic"},
        headers=citizens[HOSPITAL],
    )
    assert theirs.status_code == 404, theirs.text
    claims = []
    for hospital, invoice, expected in (
        (HOSPITAL, REFERENCE, a_id),
        (OTHER_HOSPITAL, "0x" + b_id.hex(), b_id),
    ):
        claim = world.client.post(
            "/api/v1/claims",
            json={"invoice": invoice, "payer": "basic"},
            headers=citizens[hospital],
        )
        assert claim.status_code == 201, claim.text
        assert claim.json()["invoice_id"] == "0x" + expected.hex()
        claims.append(claim.json())
    assert all(c["state"] == "approved" for c in claims), claims
    assert world.services.settle.run() == 2
    assert ledger.claim_state(a_id).paid == claims[0]["amount_fen"] > 0
    assert ledger.claim_state(b_id).paid == claims[1]["amount_fen"] > 0
