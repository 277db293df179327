"""A hospital uploads its HIS export as it is (docs/his-export.md): the documented example is
accepted and stored as format 2; a refusal names the export's own field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from api.db import models
from tests.api.conftest import HOSPITAL, World
from verifier.canonical import SignedFields, sign_digest, signing_digest
from verifier.his import loads, parse_export

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "his-outpatient.json"
SALT = bytes(range(16))


def signed_export(world: World, export: dict[str, Any], salt: bytes = SALT) -> dict[str, Any]:
    """The batch item the hospital's signing tool writes for one export."""
    invoice, _ = parse_export(export, HOSPITAL, salt)
    digest = signing_digest(world.services.domain, SignedFields.of(invoice).record_hash())
    return {
        "his": export,
        "hospital": HOSPITAL,
        "salt": salt.hex(),
        "signature": "0x" + sign_digest(world.hospital.key.key, digest).hex(),
    }


def test_the_documented_export_is_uploaded_as_it_is(world: World) -> None:
    export = loads(EXAMPLE.read_text())
    result = world.upload([_json_safe(signed_export(world, export))])
    (item,) = result["items"]
    assert item["status"] == "accepted", item
    assert item["reference"] == "33060125-0000000001"
    view = world.read(f"/api/v1/invoices/{item['invoice_id']}").json()
    assert view["format"] == 2 and view["total"] == 4500
    assert view["bill"]["business_number"] == "MZ20250301000001"
    with world.services.sessions() as db:
        row = db.scalar(select(models.Invoice))
        assert row is not None and row.check_code == "4ba882"
        assert row.patient_id_hash is not None  # the patient is kept (hashed, encrypted)
        assert row.patient_details_enc is not None
        details = world.services.ingest.personal.decrypt_text(
            row.patient_details_enc, "patient_details"
        )
    assert json.loads(details) == {
        "insurance_number": "330802000000000001",
        "sex": "M",
        "age": "35岁",
    }
    assert b"330802000000000001" not in row.patient_details_enc  # never in clear


def test_a_bad_export_is_refused_by_its_own_field_name_and_nothing_is_stored(
    world: World,
) -> None:
    export = loads(EXAMPLE.read_text())
    good = signed_export(world, export)
    bad = _json_safe(good)
    bad["his"]["request"]["listDetail"][2]["amt"] = "25.0100"  # no longer std x number
    result = world.upload([bad])
    (item,) = result["items"]
    assert item["status"] == "refused" and item["code"] == "invalid_invoice"
    assert item["problems"][0]["path"] == "his.request.listDetail[2].amt"
    with world.services.sessions() as db:
        assert db.scalar(select(func.count()).select_from(models.Invoice)) == 0


def _json_safe(item: dict[str, Any]) -> dict[str, Any]:
    """The item as JSON sends it (the exact decimals the loader kept, as strings)."""
    return json.loads(json.dumps(item, default=str))  # type: ignore[no-any-return]
