"""The upload path: every refusal named, good invoices kept, idempotency, conflicts, anchoring."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from sqlalchemy import func, select

from api.db import models
from chain import merkle
from tests.api.conftest import OTHER_HOSPITAL, World, tampered


def rows(world: World, model: Any) -> int:
    with world.services.sessions() as db:
        return int(db.scalar(select(func.count()).select_from(model)) or 0)


def only_problem(result: dict[str, Any]) -> tuple[str, str, str]:
    (item,) = result["items"]
    assert item["status"] == "refused"
    return item["code"], item["problems"][0]["path"], item["problems"][0]["reason"]


@pytest.mark.parametrize(
    ("changes", "code", "path", "reason"),
    [
        (
            {"total": 6451, "patient_paid": 6451},
            "invalid_invoice",
            "total",
            "lines add up to 6450 fen, the total says 6451",
        ),
        ({"bill_code": "3308202"}, "invalid_invoice", "bill_code", "is not 8 digits"),
        ({"bill_number": "00000000AB"}, "invalid_invoice", "bill_number", "is not 10 digits"),
        ({"check_code": "ab-12!"}, "invalid_invoice", "check_code", "is not 6 letters or digits"),
        ({"diagnoses": ["flu"]}, "invalid_invoice", "diagnoses[0]", "is not an ICD-10 code"),
        (
            {"insurance_paid": -1, "patient_paid": 6451},
            "invalid_invoice",
            "insurance_paid",
            "must not be negative",
        ),
        ({"total": 64.5}, "invalid_invoice", "total", "fractional"),
        ({"issued_at": "2025-03-01T10:00:00"}, "invalid_invoice", "issued_at", "timezone"),
        (
            {"visit_type": "inpatient", "admitted_on": "2025-03-05", "discharged_on": "2025-03-01"},
            "invalid_invoice",
            "discharged_on",
            "is before admission",
        ),
        ({"hospital": "H99999999999"}, "wrong_hospital", "invoice.hospital", "not the uploading"),
    ],
)
def test_each_refusal_names_the_invoice_field_and_reason(
    world: World, changes: dict[str, Any], code: str, path: str, reason: str
) -> None:
    item = world.item(1)
    item["invoice"].update(changes)
    result = world.upload([item])
    got_code, got_path, got_reason = only_problem(result)
    assert (got_code, got_path) == (code, path)
    assert reason in got_reason
    # The refusal names the invoice as the hospital sent it, even a malformed identity.
    invoice = item["invoice"]
    assert result["items"][0]["reference"] == f"{invoice['bill_code']}-{invoice['bill_number']}"
    assert rows(world, models.Invoice) == 0 and rows(world, models.Outbox) == 0


def test_a_line_that_does_not_add_up_is_named_by_its_index(world: World) -> None:
    item = world.item(1)
    item["invoice"]["lines"][2]["amount"] = 2951
    code, path, reason = only_problem(world.upload([item]))
    assert (code, path) == ("invalid_invoice", "lines[2].amount")
    assert "2950 fen, the line says 2951" in reason


def test_unknown_catalogue_code_shape_is_refused(world: World) -> None:
    item = world.item(1)
    item["invoice"]["lines"][0]["code"] = "12"
    assert only_problem(world.upload([item]))[1] == "lines[0].code"


@pytest.mark.parametrize("field", ["total", "check_code", "issued_at", "patient_commitment"])
def test_changed_after_signing_is_a_signature_by_nobody_known(world: World, field: str) -> None:
    item = world.item(1)
    value = {
        "total": 6450,
        "check_code": "zzzzzz",
        "issued_at": "2025-03-02T10:00:00+08:00",
        "patient_commitment": "0x" + "ab" * 32,
    }[field]
    if field == "total":  # keep it internally consistent: change a line and the split too
        item = tampered(item)
        item["invoice"]["lines"][1]["amount"] = 1100
        item["invoice"]["lines"][1]["unit_price"] = 1100
        item["invoice"].update(total=6550, patient_paid=6550)
    else:
        item = tampered(item, **{field: value})
        item.pop("patient")
    code, path, reason = only_problem(world.upload([item]))
    assert (code, path) == ("signer_not_valid", "signature")
    assert "is not a registered key of hospital" in reason


def test_signature_by_an_unregistered_key_is_refused(world: World) -> None:
    code, _, reason = only_problem(world.upload([world.item(1, signer=Account.create())]))
    assert code == "signer_not_valid" and "is not a registered key" in reason


def test_garbage_signature_is_refused(world: World) -> None:
    item = world.item(1)
    item["signature"] = "0x" + "00" * 65
    code, path, _ = only_problem(world.upload([item]))
    assert (code, path) == ("bad_signature", "signature")
    item["signature"] = "nothex"
    assert only_problem(world.upload([item]))[0] == "bad_signature"


def test_a_revoked_key_uploads_nothing_new_whatever_its_issue_time(world: World) -> None:
    from datetime import UTC, datetime

    services = world.services
    before = world.upload([world.item(3, issued_at="2025-01-10T10:00:00+08:00")])
    assert before["accepted"] == 1
    services.ledger.revoke_hospital_key(world.hospital.code, 0, datetime(2025, 2, 1, tzinfo=UTC))
    services.registry.refresh()
    late = world.item(1)  # issued 2025-03-01, after the revocation
    early = world.item(2, issued_at="2025-01-15T10:00:00+08:00")  # backdated, as a thief would
    result = world.upload([late, early])
    assert [item["code"] for item in result["items"]] == ["key_revoked", "key_revoked"]
    assert "was revoked" in result["items"][1]["problems"][0]["reason"]
    # What was accepted before the revocation stays accepted.
    assert world.read(f"/api/v1/invoices/{before['items'][0]['invoice_id']}").status_code == 200


def test_key_not_yet_valid_at_issue_time_is_refused(world: World) -> None:
    item = world.item(1, issued_at="2023-12-31T10:00:00+08:00")
    code, _, reason = only_problem(world.upload([item]))
    assert code == "signer_not_valid" and "valid only from" in reason


def test_patient_data_must_match_the_commitment(world: World) -> None:
    item = world.item(1)
    item["patient"]["id_number"] = "330802199001019999"
    assert only_problem(world.upload([item]))[0] == "patient_mismatch"


def test_a_batch_keeps_the_good_and_reports_each_bad(world: World) -> None:
    bad = world.item(2)
    bad["invoice"]["lines"][0]["amount"] = 1
    unsigned = world.item(4)
    unsigned["signature"] = "0x" + "11" * 65
    result = world.upload([world.item(1), bad, world.item(3), unsigned])
    assert [i["status"] for i in result["items"]] == ["accepted", "refused", "accepted", "refused"]
    assert (result["accepted"], result["refused"]) == (2, 2)
    assert rows(world, models.Invoice) == 2
    assert rows(world, models.InvoiceLine) == 6
    assert rows(world, models.Outbox) == 2


def test_same_invoice_twice_returns_the_same_receipt(world: World) -> None:
    item = world.item(1)
    first = world.upload([item])["items"][0]
    again = world.upload([item])["items"][0]
    assert again["status"] == "duplicate" and again["http_status"] == 200
    for key in ("invoice_id", "record_hash", "received_at", "batch_id"):
        assert again[key] == first[key]
    assert rows(world, models.Invoice) == 1 and rows(world, models.Outbox) == 1


def test_same_identity_with_other_content_is_a_conflict_and_changes_nothing(world: World) -> None:
    world.upload([world.item(1)])
    with world.services.sessions() as db:
        before = db.scalars(select(models.Invoice)).one().record_hash
    other = world.item(1, check_code="zz9999")
    result = world.upload([other])
    assert result["items"][0]["code"] == "conflict" and result["items"][0]["http_status"] == 409
    with world.services.sessions() as db:
        assert db.scalars(select(models.Invoice)).one().record_hash == before


def test_the_same_invoice_twice_in_one_batch_is_refused_once(world: World) -> None:
    item = world.item(1)
    result = world.upload([item, item])
    assert [i["status"] for i in result["items"]] == ["accepted", "refused"]
    assert result["items"][1]["code"] == "duplicate_in_batch"


def test_api_key_is_required_and_binds_the_hospital(world: World) -> None:
    body = {"items": [world.item(1)]}
    assert world.client.post("/api/v1/invoices/batches", json=body).status_code == 401
    wrong = world.client.post(
        "/api/v1/invoices/batches", json=body, headers={"X-API-Key": "zch_nope"}
    )
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "api_key_invalid"
    # The other hospital's key cannot upload this hospital's invoices.
    result = world.upload([world.item(1)], api_key=world.other.api_key)
    assert result["items"][0]["code"] == "wrong_hospital"
    # ... and its own invoices must carry its own signature.
    own = world.item(5, hospital=OTHER_HOSPITAL, signer=world.other.key)
    assert world.upload([own], api_key=world.other.api_key)["items"][0]["status"] == "accepted"


def test_malformed_request_gets_a_clear_error(world: World) -> None:
    response = world.client.post(
        "/api/v1/invoices/batches",
        json={"items": []},
        headers={"X-API-Key": world.hospital.api_key},
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"
    # An item that is not even an object is refused alone (the batch answers per item).
    weird = world.upload(["not an object"])  # type: ignore[list-item]
    assert only_problem(weird)[:2] == ("invalid_item", "$")
    missing = world.item(1)
    del missing["invoice"]["lines"]
    assert only_problem(world.upload([missing]))[1:] == (
        "lines",
        "must be a non-empty list of detail lines",
    )
    assert rows(world, models.Invoice) == 0


def test_anchored_invoice_has_a_proof_that_the_chain_accepts(world: World) -> None:
    items = [world.item(n) for n in range(1, 7)]
    world.upload(items)
    pending = world.read(f"/api/v1/invoices/33082025-{1:010d}").json()
    assert pending["status"] == "pending" and pending["leaf_index"] is None
    world.services.anchoring.run_once(force=True)
    body = world.read(f"/api/v1/invoices/33082025-{3:010d}").json()
    assert body["status"] == "anchored"
    assert body["checkpoint_size"] in (4, 6) and body["checkpoint_transaction"].startswith("0x")
    proof = world.read(f"/api/v1/invoices/{body['invoice_id']}/proof").json()
    root = world.services.ledger.checkpoint(proof["checkpoint_size"])
    assert root is not None and "0x" + root.root.hex() == proof["checkpoint_root"]
    merkle.verify_inclusion(
        bytes.fromhex(proof["leaf_hash"][2:]),
        proof["leaf_index"],
        proof["checkpoint_size"],
        [bytes.fromhex(p[2:]) for p in proof["proof"]],
        root.root,
    )
    assert (
        merkle.leaf_hash(bytes.fromhex(proof["leaf"]["entry"][2:])).hex() == proof["leaf_hash"][2:]
    )
    missing = world.read("/api/v1/invoices/33082025-0000009999")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "invoice_not_found"


def test_void_by_the_hospital_signature(world: World) -> None:
    world.upload([world.item(1)])
    world.services.anchoring.run_once(force=True)
    body = world.read(f"/api/v1/invoices/33082025-{1:010d}").json()
    invoice_id = bytes.fromhex(body["invoice_id"][2:])
    red = b"\x05" * 32
    with world.services.ledger.exclusive() as parts:  # the hospital signs, at its office
        signature = parts.session.ledger.sign_void(world.hospital.key, invoice_id, red)
        forged_signature = parts.session.ledger.sign_void(Account.create(), invoice_id, red)
    request = {"red_invoice_id": "0x" + red.hex(), "signature": "0x" + signature.hex()}
    wrong = world.client.post(
        f"/api/v1/invoices/{body['invoice_id']}/void",
        json=request,
        headers={"X-API-Key": world.other.api_key},
    )
    assert wrong.status_code == 404  # another hospital's invoice does not exist for it
    assert wrong.json()["error"]["code"] == "invoice_not_found"
    forged = dict(
        request,
        signature="0x" + forged_signature.hex(),
    )
    refused = world.client.post(
        f"/api/v1/invoices/{body['invoice_id']}/void",
        json=forged,
        headers={"X-API-Key": world.hospital.api_key},
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "invalid_void_signature"
    done = world.client.post(
        f"/api/v1/invoices/{body['invoice_id']}/void",
        json=request,
        headers={"X-API-Key": world.hospital.api_key},
    )
    assert done.status_code == 200 and done.json()["status"] == "voided"
    assert world.services.ledger.claim_state(invoice_id).voided
    again = world.client.post(
        f"/api/v1/invoices/{body['invoice_id']}/void",
        json=request,
        headers={"X-API-Key": world.hospital.api_key},
    )
    assert again.status_code == 409


def test_qr_png_decodes_to_a_payload_signed_by_the_hospital(world: World) -> None:
    from verifier.qr import decode_payload, decode_qr_image

    world.upload([world.item(1)])
    text = world.read("/api/v1/invoices/33082025-0000000001/qr").json()["payload"]
    png = world.read("/api/v1/invoices/33082025-0000000001/qr.png")
    assert png.headers["content-type"] == "image/png"
    assert decode_qr_image(png.content) == [text]
    payload = decode_payload(text)
    assert payload.signer() == world.hospital.key.address
    assert payload.domain() == world.services.domain
    svg = world.read("/api/v1/invoices/33082025-0000000001/qr.svg")
    assert svg.headers["content-type"] == "image/svg+xml" and b"<svg" in svg.content


def test_printable_invoice_for_the_issuing_hospital_only(world: World) -> None:
    from PIL import Image

    from verifier.qr import decode_qr_image

    world.upload([world.item(1)])
    world.services.anchoring.run_once(force=True)
    url = "/api/v1/invoices/33082025-0000000001/print"
    assert world.client.get(f"{url}.pdf").status_code == 401
    other = world.client.get(f"{url}.pdf", headers={"X-API-Key": world.other.api_key})
    assert other.status_code == 404  # another hospital's invoice does not exist for it
    pdf = world.client.get(f"{url}.pdf", headers={"X-API-Key": world.hospital.api_key})
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    png = world.client.get(f"{url}.png", headers={"X-API-Key": world.hospital.api_key})
    import io

    assert Image.open(io.BytesIO(png.content)).size == (1240, 1754)
    text = world.read("/api/v1/invoices/33082025-0000000001/qr").json()["payload"]
    assert decode_qr_image(png.content) == [text]


def test_a_stored_invoice_reads_back_as_signed(world: World) -> None:
    from api.read.invoices import load_invoice
    from verifier.canonical import SignedFields
    from verifier.invoice import parse_invoice

    item = world.item(1)
    world.upload([item])
    with world.services.sessions() as db:
        row = db.scalars(select(models.Invoice)).one()
        loaded = load_invoice(db, row)
    original = parse_invoice(item["invoice"])
    assert loaded == original
    assert [ln.time.utcoffset() for ln in loaded.lines] == [
        ln.time.utcoffset() for ln in original.lines
    ]
    assert SignedFields.of(loaded).record_hash() == row.record_hash


def test_line_item_proof_verifies_with_the_verifier_alone(world: World) -> None:
    from verifier.line_proof import LineProof, LineProofInvalid, verify_line_proof

    world.upload([world.item(1)])
    world.services.anchoring.run_once(force=True)
    url = "/api/v1/invoices/33082025-0000000001/lines/3/proof"
    assert world.client.get(url, headers={"X-API-Key": world.other.api_key}).status_code == 404
    body = world.client.get(url, headers={"X-API-Key": world.hospital.api_key}).json()
    proof = LineProof.from_json(body)
    checkpoint = world.services.ledger.checkpoint(proof.checkpoint_size)
    assert checkpoint is not None
    line = verify_line_proof(proof, checkpoint.root)
    assert (line.code, line.name, line.amount) == ("S250101001000", "血常规", 2950)
    assert line.signer == world.hospital.key.address
    # A changed line, a line moved to another position, or a wrong root: each link refuses.
    import cbor2

    entry = cbor2.loads(proof.line_entry)
    entry[6] += 1
    from dataclasses import replace

    for bad, link in (
        (replace(proof, line_entry=cbor2.dumps(entry, canonical=True)), "detail"),
        (replace(proof, line_no=2), "detail"),
        (replace(proof, leaf_index=proof.leaf_index + 1), "inclusion"),
    ):
        with pytest.raises(LineProofInvalid) as info:
            verify_line_proof(bad, checkpoint.root)
        assert info.value.link == link
    with pytest.raises(LineProofInvalid, match="inclusion"):
        verify_line_proof(proof, b"\x00" * 32)
    missing = world.client.get(
        "/api/v1/invoices/33082025-0000000001/lines/9/proof",
        headers={"X-API-Key": world.hospital.api_key},
    )
    assert missing.status_code == 404


def test_csv_batch_upload(world: World) -> None:
    from api.adapters.hospital_files import write_csv_batch

    bad = world.item(2)
    bad["invoice"]["lines"][1]["amount"] = 999
    csv_text = write_csv_batch([world.item(1), bad])
    response = world.client.post(
        "/api/v1/invoices/batches.csv",
        content=csv_text.encode(),
        headers={"X-API-Key": world.hospital.api_key, "Content-Type": "text/csv"},
    )
    assert response.status_code == 200
    body = response.json()
    assert [i["status"] for i in body["items"]] == ["accepted", "refused"]
    assert body["items"][1]["problems"][0]["path"] == "lines[1].amount"
    empty = world.client.post(
        "/api/v1/invoices/batches.csv",
        content=b"bill_code\n",
        headers={"X-API-Key": world.hospital.api_key},
    )
    assert empty.status_code == 422 and empty.json()["error"]["code"] == "invalid_csv"


def test_a_hospital_lists_its_own_invoices_only(world: World) -> None:
    world.upload([world.item(1), world.item(2)])
    own = world.client.get("/api/v1/invoices", headers={"X-API-Key": world.hospital.api_key})
    assert [i["reference"] for i in own.json()] == ["33082025-0000000002", "33082025-0000000001"]
    assert all(i["status"] == "pending" for i in own.json())
    other = world.client.get("/api/v1/invoices", headers={"X-API-Key": world.other.api_key})
    assert other.json() == []
    assert world.client.get("/api/v1/invoices").status_code == 401


def test_two_anchoring_rounds_at_once_record_each_checkpoint_once(world: World) -> None:
    """The background loop and a forced round (seeding, a tool) may run together in one
    process: every invoice is appended once and every checkpoint recorded once."""
    import threading

    failures: list[BaseException] = []
    start = threading.Barrier(2)

    def rounds(force: bool) -> None:
        start.wait()
        try:
            for _ in range(20):
                world.services.anchoring.run_once(force=force)
        except BaseException as exc:  # reported below, with the other thread's
            failures.append(exc)

    for n in range(3):
        world.upload([world.item(10 * n + k) for k in range(6)])
        threads = [threading.Thread(target=rounds, args=(f,)) for f in (False, True)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert failures == []
    with world.services.sessions() as db:
        sizes = list(db.scalars(select(models.Checkpoint.size).order_by(models.Checkpoint.size)))
        leaf_indexes = list(db.scalars(select(models.Invoice.leaf_index)))
    on_chain = [e.args["size"] for e in world.services.ledger.events(name="CheckpointAnchored")]
    assert sizes == on_chain == sorted(set(on_chain))
    assert sorted(leaf_indexes) == list(range(18)) and sizes[-1] == 18  # type: ignore[type-var]
