"""Generates the verification vectors in tests/verifier/vectors/verify/ (run from the repo root:
``.venv/bin/python tests/verifier/vectors/make_verify_vectors.py``).

Every vector is verified online against a test ledger whose keys are fixed here: the authority
key (so the contract address, the EIP-712 domain, is CREATE(authority, nonce 0)), the
hospital's key, and a second, revoked key. ``invoice`` is the invoice the test uploads and
anchors; each vector's ``text`` is presented to the verifier and must fail at ``step`` with
``code`` (or pass, for the valid one). Derivation of each is in its ``derivation``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import rlp
from eth_account import Account
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from verifier.canonical import Domain, patient_commitment, sign_digest
from verifier.invoice import parse_invoice
from verifier.qr import QrPayload, encode_payload, payload_for

OUT = Path(__file__).resolve().parent / "verify"
CHAIN_ID = 5700
AUTHORITY_KEY = hashlib.sha256(b"zeroclaim verify vectors authority").digest()
HOSPITAL_KEY = hashlib.sha256(b"zeroclaim verify vectors hospital").digest()
REVOKED_KEY = hashlib.sha256(b"zeroclaim verify vectors revoked key").digest()
STRANGER_KEY = hashlib.sha256(b"zeroclaim verify vectors stranger").digest()
HOSPITAL = "H33080200001"
SALT = hashlib.sha256(b"zeroclaim verify vectors salt").digest()[:16]
ID_NUMBER = "330802199001010011"


def contract_address() -> str:
    authority = bytes.fromhex(Account.from_key(AUTHORITY_KEY).address[2:])
    return to_checksum_address(keccak(rlp.encode([authority, 0]))[12:])


def invoice_json(bill_number: str = "0000000001", check_code: str = "Ab12Cd") -> dict[str, Any]:
    return {
        "bill_code": "33082501",
        "bill_number": bill_number,
        "check_code": check_code,
        "hospital": HOSPITAL,
        "issued_at": "2025-03-01T10:00:00+08:00",
        "visit_type": "outpatient",
        "department": "内科",
        "diagnoses": ["J06.9"],
        "patient_commitment": "0x" + patient_commitment(ID_NUMBER, SALT).hex(),
        "total": 3500,
        "insurance_paid": 0,
        "patient_paid": 3500,
        "lines": [
            {
                "code": "XJ01CAA040A001",
                "name": "阿莫西林胶囊",
                "class": "A",
                "unit_price": 1250,
                "quantity_milli": 2000,
                "amount": 2500,
                "department": "内科",
                "time": "2025-03-01T09:30:00+08:00",
            },
            {
                "code": "F001102000010000",
                "name": "普通门诊诊查费",
                "class": "A",
                "unit_price": 1000,
                "quantity_milli": 1000,
                "amount": 1000,
                "department": "内科",
                "time": "2025-03-01T09:00:00+08:00",
            },
        ],
    }


def signed(payload: QrPayload, key: bytes, domain: Domain | None = None) -> QrPayload:
    """The payload re-signed with ``key`` in ``domain`` (its own domain by default)."""
    digest = payload.digest(domain or payload.domain())
    return replace(payload, signature=sign_digest(key, digest))


def vectors() -> list[dict[str, Any]]:
    domain = Domain(CHAIN_ID, contract_address())
    invoice = parse_invoice(invoice_json())
    good = signed(payload_for(invoice, domain, b"\x00" * 65), HOSPITAL_KEY)
    valid = encode_payload(good)
    out: list[dict[str, Any]] = [
        {
            "name": "valid",
            "text": valid,
            "step": None,
            "code": None,
            "derivation": "the anchored invoice's payload signed by the hospital key",
        }
    ]

    def tampered(name: str, field: str, value: Any, note: str) -> None:
        out.append(
            {
                "name": name,
                "text": encode_payload(replace(good, **{field: value})),
                "step": "registry",
                "code": "key_not_valid",
                "derivation": f"valid payload with {field} changed ({note}), signature kept: "
                "the signature recovers some other key, not the hospital's",
            }
        )

    tampered("tampered_amount", "total", good.total + 100, "+1 yuan")
    tampered("tampered_date", "issued_at", good.issued_at + 86400, "one day later")
    tampered("tampered_identity", "bill_number", "0000000002", "another bill number")
    tampered("tampered_check_code", "check_code", "Zz99Yy", "another check code")
    tampered("tampered_detail_root", "detail_root", bytes(31) + b"\x01", "another detail root")
    tampered("tampered_patient_commitment", "patient_commitment", b"\x11" * 32, "another patient")
    sig = bytearray(good.signature)
    sig[63] ^= 0x01
    out.append(
        {
            "name": "tampered_signature",
            "text": encode_payload(replace(good, signature=bytes(sig))),
            "step": "registry",
            "code": "key_not_valid",
            "derivation": "lowest bit of s flipped: s stays in the lower half, so the signature "
            "is well-formed and recovers another key",
        }
    )
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    s = int.from_bytes(good.signature[32:64], "big")
    high = good.signature[:32] + (n - s).to_bytes(32, "big") + bytes([55 - good.signature[64]])
    out.append(
        {
            "name": "malleated_signature",
            "text": encode_payload(replace(good, signature=high)),
            "step": "signature",
            "code": "signature_invalid",
            "derivation": "the same signature with s -> n - s and v flipped (EIP-2 high s)",
        }
    )
    out.append(
        {
            "name": "unregistered_key",
            "text": encode_payload(signed(good, STRANGER_KEY)),
            "step": "registry",
            "code": "key_not_valid",
            "derivation": "valid payload signed by a key never registered",
        }
    )
    out.append(
        {
            "name": "revoked_key",
            "text": encode_payload(signed(good, REVOKED_KEY)),
            "step": "registry",
            "code": "key_not_valid",
            "derivation": "signed by the hospital's second key, revoked (backdated) before "
            "the issue time",
        }
    )
    other_chain = replace(good, chain_id=1)
    out.append(
        {
            "name": "replay_other_chain",
            "text": encode_payload(signed(other_chain, HOSPITAL_KEY)),
            "step": "canonicalise",
            "code": "domain_mismatch",
            "derivation": "the hospital's genuine signature for chain id 1: replay refused",
        }
    )
    other_contract = replace(good, contract=to_checksum_address("0x" + "12" * 20))
    out.append(
        {
            "name": "replay_other_contract",
            "text": encode_payload(signed(other_contract, HOSPITAL_KEY)),
            "step": "canonicalise",
            "code": "domain_mismatch",
            "derivation": "the hospital's genuine signature for another ledger contract",
        }
    )
    unanchored = signed(
        payload_for(parse_invoice(invoice_json("0000000009")), domain, b"\x00" * 65), HOSPITAL_KEY
    )
    out.append(
        {
            "name": "never_uploaded",
            "text": encode_payload(unanchored),
            "step": "inclusion",
            "code": "invoice_unknown",
            "derivation": "a genuinely signed invoice that was never uploaded",
        }
    )
    resigned = signed(
        payload_for(parse_invoice(invoice_json(check_code="Qq77Rr")), domain, b"\x00" * 65),
        HOSPITAL_KEY,
    )
    out.append(
        {
            "name": "resigned_other_content",
            "text": encode_payload(resigned),
            "step": "record",
            "code": "record_mismatch",
            "derivation": "the hospital signed another version (check code changed) of the "
            "anchored invoice: genuine signature, not the anchored record",
        }
    )
    out.append(
        {
            "name": "truncated",
            "text": valid[:-20],
            "step": "parse",
            "code": "qr_malformed",
            "derivation": "the valid text less its last 20 chars",
        }
    )
    out.append(
        {
            "name": "wrong_version",
            "text": "ZC2:" + valid[4:],
            "step": "parse",
            "code": "qr_unsupported_version",
            "derivation": "prefix ZC2:",
        }
    )
    out.append(
        {
            "name": "garbage",
            "text": "hello, world",
            "step": "parse",
            "code": "qr_wrong_prefix",
            "derivation": "not a QR payload at all",
        }
    )
    out.append(
        {
            "name": "oversized",
            "text": "ZC1:" + "A" * 5000,
            "step": "parse",
            "code": "qr_too_long",
            "derivation": "5,004 characters, over the 1,024 limit",
        }
    )
    for vector in out:
        vector["generated_by"] = "tests/verifier/vectors/make_verify_vectors.py"
    return out


def documents() -> dict[str, str]:
    common = {
        "chain_id": CHAIN_ID,
        "contract": contract_address(),
        "hospital": HOSPITAL,
        "authority_key": "0x" + AUTHORITY_KEY.hex(),
        "hospital_key": "0x" + HOSPITAL_KEY.hex(),
        "revoked_key": "0x" + REVOKED_KEY.hex(),
        "invoice": invoice_json(),
        "patient": {"id_number": ID_NUMBER, "name": "测试", "salt": SALT.hex()},
        "generated_by": "tests/verifier/vectors/make_verify_vectors.py",
    }
    files = {"ledger.json": json.dumps(common, ensure_ascii=False, indent=1) + "\n"}
    for vector in vectors():
        files[f"{vector['name']}.json"] = json.dumps(vector, ensure_ascii=False, indent=1) + "\n"
    return files


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, text in documents().items():
        (OUT / name).write_text(text)


if __name__ == "__main__":
    main()
