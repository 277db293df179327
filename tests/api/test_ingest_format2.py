"""Uploading format-2 bills (the national medical e-bill): stored as signed, read back field for
field, and refused whole, with nothing stored, when a printed sum does not add up."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import cbor2
import pytest
from sqlalchemy import func, select

from api.adapters.hospital_files import sign_item
from api.db import models
from api.read.invoices import load_invoice
from tests.api.conftest import HOSPITAL, World
from tests.format2 import bill, patient
from verifier.canonical import SignedFields, detail_root, sign_digest, signing_digest
from verifier.invoice import invoice_to_json, parse_invoice
from verifier.line_proof import LineProof, LineProofInvalid, verify_line_proof


def signed(world: World, data: dict[str, Any], n: int = 1) -> dict[str, Any]:
    return sign_item(
        {"invoice": data, "patient": patient(n)}, world.hospital.key.key, world.services.domain
    )


def count(world: World, model: Any) -> int:
    with world.services.sessions() as db:
        return int(db.scalar(select(func.count()).select_from(model)) or 0)


def test_a_format_2_bill_is_stored_and_reads_back_as_signed(world: World) -> None:
    data = bill(3)
    result = world.upload([signed(world, data, 3)])
    (item,) = result["items"]
    assert item["status"] == "accepted", item
    with world.services.sessions() as db:
        row = db.scalar(select(models.Invoice))
        assert row is not None and row.format == 2
        stored = load_invoice(db, row)
    # Every field comes back as the hospital signed it, so the detail root recomputes.
    assert invoice_to_json(stored) == data
    assert detail_root(stored) == detail_root(parse_invoice(data)) == row.detail_root
    view = world.read(f"/api/v1/invoices/{item['invoice_id']}").json()
    assert view["format"] == 2
    assert view["bill"]["payment"] == data["payment"]
    assert view["bill"]["scheme"] == "employee"
    assert (view["insurance_paid"], view["patient_paid"]) == (3000, 1500)
    # The same item again is a duplicate, not a second invoice.
    again = world.upload([signed(world, data, 3)])
    assert again["items"][0]["status"] == "duplicate"
    assert count(world, models.Invoice) == 1


def test_a_bill_whose_split_does_not_add_up_is_refused_and_nothing_is_stored(
    world: World,
) -> None:
    good = signed(world, bill(1), 1)
    data = bill(2)
    data["payment"]["fund"] += 1  # the hospital signs what the till mis-added...
    # ...the signing tool refuses it (it validates first), so a rogue client signs the
    # record of the bill as it should have been and sends the mis-added one.
    record = SignedFields.of(parse_invoice(bill(2))).record_hash()
    digest = signing_digest(world.services.domain, record)
    rogue = {
        "invoice": data,
        "patient": patient(2),
        "signature": "0x" + sign_digest(world.hospital.key.key, digest).hex(),
    }
    result = world.upload([good, rogue])
    statuses = [i["status"] for i in result["items"]]
    assert statuses == ["accepted", "refused"]
    refused = result["items"][1]
    assert refused["code"] == "invalid_invoice"
    assert refused["problems"][0]["path"] == "payment"
    assert "fund + account + other + cash = 4501 fen" in refused["problems"][0]["reason"]
    assert count(world, models.Invoice) == 1
    with world.services.sessions() as db:
        lines = db.scalar(select(func.count()).select_from(models.InvoiceLine))
    assert lines == 3  # the good bill's lines only: nothing of the refused one


def test_a_format_2_bill_anchors_its_qr_verifies_and_a_line_proves_every_field(
    world: World,
) -> None:
    world.upload([signed(world, bill(5), 5)])
    world.services.anchoring.run_once(force=True)
    key = f"{HOSPITAL}:33060125-0000000005"
    payload = world.read(f"/api/v1/invoices/{key}/qr").json()["payload"]
    verdict = world.client.post("/api/v1/verify", json={"qr_text": payload}).json()
    assert verdict["valid"], verdict
    body = world.read(f"/api/v1/invoices/{key}/lines/2/proof").json()
    proof = LineProof.from_json(body)
    checkpoint = world.services.ledger.checkpoint(proof.checkpoint_size)
    assert checkpoint is not None
    line = verify_line_proof(proof, checkpoint.root)
    assert (line.code, line.amount, line.unit_price) == ("XJ01CAA040A001010100001", 1000, 42)
    assert line.fields["unit_price_e4"] == 4167 and line.fields["specification"] == "0.25g*24粒"
    assert line.signer == world.hospital.key.address
    # One changed field of the line breaks its proof.
    tag, fields = cbor2.loads(proof.line_entry)
    fields["self_amount"] = 1
    with pytest.raises(LineProofInvalid) as info:
        verify_line_proof(
            replace(proof, line_entry=cbor2.dumps([tag, fields], canonical=True)), checkpoint.root
        )
    assert info.value.link == "detail"
