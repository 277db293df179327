"""The examples in docs/ are true: recomputed from the example, every stated value matches."""

from __future__ import annotations

import hashlib
import json
import re

from eth_account import Account

from api.adapters.hospital_files import read_csv_batch, write_csv_batch
from tests.conftest import ROOT
from verifier.canonical import (
    Domain,
    SignedFields,
    patient_commitment,
    recover_signer,
    sign_digest,
    signing_digest,
)
from verifier.invoice import invoice_to_json, parse_invoice


def block(doc: str, name: str) -> str:
    match = re.search(rf"<!-- example:{name} -->\s*```[a-z]*\n(.*?)```", doc, re.S)
    assert match, f"example {name} missing"
    return match.group(1)


def test_invoice_format_example_and_its_hashes() -> None:
    doc = (ROOT / "docs" / "invoice-format.md").read_text()
    item = json.loads(block(doc, "item"))
    invoice = parse_invoice(item["invoice"])
    assert invoice_to_json(invoice) == item["invoice"]
    patient = item["patient"]
    assert invoice.patient_commitment == patient_commitment(
        patient["id_number"], bytes.fromhex(patient["salt"])
    )
    stated = dict(line.split() for line in block(doc, "hashes").strip().splitlines())
    fields = SignedFields.of(invoice)
    domain = Domain(5700, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
    key = hashlib.sha256(b"zeroclaim docs hospital key").digest()
    digest = signing_digest(domain, fields.record_hash())
    assert stated["invoice_id"] == "0x" + fields.invoice_id.hex()
    assert stated["detail_root"] == "0x" + fields.detail_root.hex()
    assert stated["record_hash"] == "0x" + fields.record_hash().hex()
    assert stated["digest"] == "0x" + digest.hex()
    assert stated["signer"] == Account.from_key(key).address
    assert stated["signature"] == "0x" + sign_digest(key, digest).hex()
    assert recover_signer(digest, bytes.fromhex(stated["signature"][2:])) == stated["signer"]
    # The CSV form of the example reads back to the same item.
    assert read_csv_batch(write_csv_batch([item])) == [item]
