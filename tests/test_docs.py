"""The examples in docs/ are true: recomputed from the example, every stated value matches."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
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


@pytest.mark.parametrize(("item_block", "hashes_block"), [("item", "hashes"), ("item2", "hashes2")])
def test_invoice_format_example_and_its_hashes(item_block: str, hashes_block: str) -> None:
    """Format 1's example and format 2's: each parses, reads back as written, and hashes and
    signs to the values the page states."""
    doc = (ROOT / "docs" / "invoice-format.md").read_text()
    item = json.loads(block(doc, item_block))
    invoice = parse_invoice(item["invoice"])
    assert invoice.format == (2 if item_block == "item2" else 1)
    assert invoice_to_json(invoice) == item["invoice"]
    patient = item["patient"]
    assert invoice.patient_commitment == patient_commitment(
        patient["id_number"], bytes.fromhex(patient["salt"])
    )
    stated = dict(line.split() for line in block(doc, hashes_block).strip().splitlines())
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
    if invoice.format == 1:  # the CSV form is format 1's; it reads back to the same item
        assert read_csv_batch(write_csv_batch([item])) == [item]


def test_architecture_names_only_modules_that_exist() -> None:
    """Every module docs/architecture.md names (``flows/claim.py``, ``chain/log.py``...) is
    there: the picture and the table of changes follow the code when it moves."""
    doc = (ROOT / "docs" / "architecture.md").read_text()
    named = set(re.findall(r"\b((?:[a-z_]+/)+[a-z_]+\.(?:py|sol|toml))\b", doc))
    assert len(named) > 30, named
    missing = sorted(
        path
        for path in named
        if not any((ROOT / base / path).exists() for base in ("", "api")) and "*" not in path
    )
    assert not missing, f"docs/architecture.md names modules that do not exist: {missing}"
    for cls, module in [
        ("UploadFlow", "api/flows/upload.py"),
        ("AnchorFlow", "api/flows/anchor.py"),
        ("VerifyFlow", "api/flows/verify.py"),
        ("ClaimFlow", "api/flows/claim.py"),
        ("ReviewFlow", "api/flows/review.py"),
        ("SettleFlow", "api/flows/settle.py"),
        ("VoidFlow", "api/flows/void.py"),
        ("LedgerGateway", "api/adapters/ledger.py"),
        ("InvoiceLog", "chain/invoice_log.py"),
    ]:
        assert cls in doc and f"class {cls}" in (ROOT / module).read_text(), cls
