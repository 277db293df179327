"""Generates the QR payload test vectors in ``qr/`` and their README.

Run from the repository root::

    .venv/bin/python tests/verifier/vectors/make_qr_vectors.py

Deterministic: keys are SHA-256 of fixed seeds and signatures are RFC 6979 (coincurve), so a run
writes the same bytes again. ``tests/verifier/test_qr.py`` checks that the committed files equal
what :func:`build` returns; after a deliberate format change, run this and commit the result.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import base45
import cbor2
from eth_utils.address import to_checksum_address

from chain.model import DOMAIN_NAME, DOMAIN_VERSION
from verifier.canonical import (
    Domain,
    SignedFields,
    patient_commitment,
    sign_digest,
    signing_digest,
)
from verifier.invoice import DetailLine, Invoice, ItemClass, VisitType
from verifier.qr import (
    MAX_PAYLOAD_CHARS,
    PREFIX,
    QrPayload,
    cbor_payload,
    decode_payload,
    encode_payload,
    payload_for,
)

OUT = Path(__file__).resolve().parent / "qr"
GENERATED_BY = "tests/verifier/vectors/make_qr_vectors.py"
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def seed(text: str) -> bytes:
    """SHA-256 of an ASCII seed: the keys, contract addresses and stand-in hashes."""
    return hashlib.sha256(text.encode("ascii")).digest()


HOSPITAL_KEY = seed("zeroclaim test hospital key")
CONTRACT = to_checksum_address(seed("zeroclaim test ledger contract")[:20])
OTHER_CONTRACT = to_checksum_address(seed("zeroclaim test other ledger contract")[:20])
CHAIN_ID = 5700
OTHER_CHAIN_ID = 5701
DOMAIN = Domain(CHAIN_ID, CONTRACT)
DETAIL_ROOT = seed("zeroclaim test detail root")
SALT = seed("zeroclaim test patient salt")[:16]
ID_NUMBER = "11010519491231002X"  # the sample ID number of GB 11643-1999
CST = timezone(timedelta(hours=8))


def sample_invoice() -> Invoice:
    """An outpatient invoice of a 12-character hospital code, total 286.50 yuan."""
    issued = datetime(2025, 3, 14, 9, 26, 53, tzinfo=CST)
    lines = (
        DetailLine("XA01AAA012A001", "阿莫西林胶囊", ItemClass.A, 1450, 2000, 2900, "内科", issued),
        DetailLine("F00000000001", "普通门诊诊查费", ItemClass.A, 1000, 1000, 1000, "内科", issued),
        DetailLine(
            "XB05BAB089B002", "葡萄糖注射液", ItemClass.B, 24750, 1000, 24750, "内科", issued
        ),
    )
    return Invoice(
        bill_code="44010125",
        bill_number="0012345678",
        check_code="A3F29C",
        hospital="H44010600123",
        issued_at=issued,
        visit_type=VisitType.OUTPATIENT,
        admitted_on=None,
        discharged_on=None,
        department="内科",
        diagnoses=("J06.9",),
        patient_commitment=patient_commitment(ID_NUMBER, SALT),
        total=28650,
        insurance_paid=17190,
        patient_paid=11460,
        lines=lines,
    )


def signed_payload(invoice: Invoice, domain: Domain) -> QrPayload:
    fields = SignedFields.of(invoice, DETAIL_ROOT)
    signature = sign_digest(HOSPITAL_KEY, signing_digest(domain, fields.record_hash()))
    return payload_for(invoice, domain, signature, DETAIL_ROOT)


def hex0x(data: bytes) -> str:
    return "0x" + data.hex()


def flip(data: bytes, index: int) -> bytes:
    """``data`` with the lowest bit of byte ``index`` flipped."""
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def text_of(items: list[Any]) -> str:
    return PREFIX + bytes(base45.b45encode(cbor2.dumps(items, canonical=True))).decode("ascii")


def field_json(p: QrPayload) -> dict[str, Any]:
    return {
        "version": p.version,
        "chain_id": p.chain_id,
        "contract": p.contract,
        "bill_code": p.bill_code,
        "bill_number": p.bill_number,
        "check_code": p.check_code,
        "hospital": p.hospital,
        "issued_at": p.issued_at,
        "issued_at_utc": datetime.fromtimestamp(p.issued_at, tz=UTC).isoformat(),
        "total": p.total,
        "detail_root": hex0x(p.detail_root),
        "patient_commitment": hex0x(p.patient_commitment),
        "signature": hex0x(p.signature),
    }


def vector(
    name: str,
    description: str,
    payload: str,
    expected_error: str | None,
    derivation: str,
    **extra: Any,
) -> tuple[str, dict[str, Any]]:
    return name, {
        "description": description,
        "payload": payload,
        "expected_error": expected_error,
        "derivation": derivation,
        **extra,
        "generated_by": GENERATED_BY,
    }


def build_vectors() -> dict[str, dict[str, Any]]:
    """Every vector by name (the file name without ``.json``)."""
    valid = signed_payload(sample_invoice(), DOMAIN)
    valid_text = encode_payload(valid)
    signer = valid.signer()
    fields = valid.signed_fields()
    out: list[tuple[str, dict[str, Any]]] = []
    out.append(vector(
        "valid",
        "A valid payload: decodes, and its signature recovers the registered hospital key.",
        valid_text,
        None,
        "The sample invoice of make_qr_vectors.py (hospital H44010600123, 286.50 yuan, issued "
        "2025-03-14T09:26:53+08:00), detail_root = SHA-256('zeroclaim test detail root') "
        "standing in for the detail tree, patient_commitment of ID 11010519491231002X with salt "
        "SHA-256('zeroclaim test patient salt')[:16]; signed in domain (5700, contract = "
        "SHA-256('zeroclaim test ledger contract')[:20]) with the key "
        "SHA-256('zeroclaim test hospital key') (RFC 6979 deterministic ECDSA).",
        fields=field_json(valid),
        cbor_hex=cbor_payload(valid).hex(),
        length=len(valid_text),
        invoice_id=hex0x(fields.invoice_id),
        record_hash=hex0x(fields.record_hash()),
        domain={
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chain_id": DOMAIN.chain_id,
            "contract": DOMAIN.contract,
            "separator": hex0x(DOMAIN.separator),
        },
        digest=hex0x(valid.digest()),
        signer=signer,
    ))  # fmt: skip

    tampered: list[tuple[str, str, Any]] = [
        ("bill_code", "the bill code 44010125 -> 44010126 (identity)", "44010126"),
        ("bill_number", "the bill number 0012345678 -> 0012345679 (identity)", "0012345679"),
        ("check_code", "the check code A3F29C -> A3F29D", "A3F29D"),
        ("hospital", "the hospital code H44010600123 -> H44010600124", "H44010600124"),
        ("issued_at", "the issue time one day later (+86400 s)", valid.issued_at + 86_400),
        ("total", "the total 28650 -> 98650 fen (286.50 -> 986.50 yuan)", 98_650),
        ("detail_root", "byte 0 of detail_root with its low bit flipped",
         flip(valid.detail_root, 0)),
        ("patient_commitment", "byte 0 of patient_commitment with its low bit flipped",
         flip(valid.patient_commitment, 0)),
        ("signature", "byte 63 of the signature (the last byte of s) with its low bit flipped "
         "(s stays in the lower half)", flip(valid.signature, 63)),
    ]  # fmt: skip
    for field, change, value in tampered:
        changed = dataclasses.replace(valid, **{field: value})
        recovered = changed.signer()
        assert recovered != signer, field
        out.append(vector(
            f"tampered_{field}",
            f"The valid payload with {field} changed: decodes, but the signature recovers "
            "another key, not the hospital's.",
            encode_payload(changed),
            "signer_mismatch",
            f"The valid vector with {change}, everything else kept, re-encoded.",
            tampered_field=field,
            recovered_signer=recovered,
        ))  # fmt: skip

    replays = [
        ("replay_other_chain", Domain(OTHER_CHAIN_ID, CONTRACT), f"chain id {OTHER_CHAIN_ID}"),
        ("replay_other_contract", Domain(CHAIN_ID, OTHER_CONTRACT),
         "contract SHA-256('zeroclaim test other ledger contract')[:20]"),
    ]  # fmt: skip
    for name, domain, what in replays:
        replay = signed_payload(sample_invoice(), domain)
        assert replay.signer() == signer
        recovered = replay.signer(DOMAIN)
        assert recovered != signer
        out.append(vector(
            name,
            f"The sample invoice genuinely signed by the hospital key, but for {what}: it "
            "decodes and its signature is valid in the domain it carries; a verifier pinned to "
            "the valid vector's domain refuses it (in that domain the signature recovers "
            "another key).",
            encode_payload(replay),
            "domain_mismatch",
            "As the valid vector, with the domain (and the domain carried in the payload) "
            f"changed to {what}.",
            domain={"chain_id": domain.chain_id, "contract": domain.contract},
            recovered_signer=recovered,
        ))  # fmt: skip

    sig = valid.signature
    s = int.from_bytes(sig[32:64], "big")
    high_s = sig[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - sig[64]])
    out.append(vector(
        "malleated_signature",
        "The valid signature in its high-s form (s -> n - s, v 27 <-> 28): the same key would "
        "recover, but high s is refused so that a signature has one encoding only.",
        encode_payload(dataclasses.replace(valid, signature=high_s)),
        "signature_invalid",
        "The valid vector with s replaced by secp256k1 n - s and v by 55 - v, re-encoded.",
    ))  # fmt: skip

    items = [valid.version, valid.chain_id, bytes.fromhex(valid.contract[2:]),
             int(valid.bill_code), int(valid.bill_number), valid.check_code, valid.hospital,
             valid.issued_at, valid.total, valid.detail_root, valid.patient_commitment,
             valid.signature]  # fmt: skip
    body = valid_text[len(PREFIX) :]
    long_chain_id = b"".join([
        b"\x8c", cbor2.dumps(items[0]), b"\x1a", CHAIN_ID.to_bytes(4, "big"),
        *(cbor2.dumps(item) for item in items[2:]),
    ])  # fmt: skip
    too_long = MAX_PAYLOAD_CHARS + 1
    out += [
        vector("truncated", "The valid payload with its last 3 characters cut off.",
               valid_text[:-3], "QrMalformed",
               "The valid text without its last 3 characters: still base45, but the CBOR array "
               "ends inside the signature."),
        vector("wrong_version", "A payload whose CBOR version field is 2.",
               text_of([2, *items[1:]]), "QrUnsupportedVersion",
               "The valid vector's CBOR array with the first element 2, re-encoded, same prefix."),
        vector("wrong_prefix", "The valid base45 body under the EU DCC prefix HC1:.",
               "HC1:" + body, "QrWrongPrefix", "'HC1:' + the valid text after 'ZC1:'."),
        vector("garbage", "Right prefix, then characters outside the base45 alphabet.",
               PREFIX + "NOT-BASE45, AT ALL!", "QrMalformed",
               "'ZC1:NOT-BASE45, AT ALL!' (',' and '!' are not base45)."),
        vector("oversized", "A text one character longer than MAX_PAYLOAD_CHARS.",
               PREFIX + "0" * (too_long - len(PREFIX)), "QrTooLong",
               f"'ZC1:' + '0' x {too_long - len(PREFIX)}: {too_long} characters, refused "
               "before decoding."),
        vector("non_canonical_cbor",
               "The valid fields with chain_id as a 4-byte integer (1a00001644) instead of the "
               "shortest 2-byte form (191644).",
               PREFIX + base45.b45encode(long_chain_id).decode("ascii"), "QrMalformed",
               "The valid vector's CBOR array encoded item by item, chain_id 5700 with the "
               "additional-info 26 (4-byte) head; base45, prefix ZC1:."),
    ]  # fmt: skip
    decode_payload(valid_text)  # sanity: the valid one decodes
    return dict(out)


def readme(vectors: dict[str, dict[str, Any]]) -> str:
    rows = "\n".join(
        f"| `{name}.json` | {v['expected_error'] or '—'} | {v['derivation']} |"
        for name, v in vectors.items()
    )
    return f"""# QR payload test vectors

Generated by `{GENERATED_BY}`; do not edit by hand. The format is specified in
[docs/qr-format.md](../../../../docs/qr-format.md); `tests/verifier/test_qr.py` checks every
vector, and that these files equal the generator's output.

Each file holds `description`, `payload` (the QR text), `expected_error` and `derivation`.
`expected_error` is `null` (valid), the name of the exception that `decode_payload` raises
(`QrMalformed`, `QrTooLong`, ...), or the first verification step that fails on a payload that
decodes:

- `domain_mismatch`: the domain in the payload is not the verifier's ledger (the valid vector's
  `domain`);
- `signature_invalid`: `recover_signer` raises `SignatureInvalid` (here: high s);
- `signer_mismatch`: the signature recovers an address other than the registered hospital key
  (the valid vector's `signer`); the vector's `recovered_signer` is the address recovered.

Fixed inputs: hospital key `SHA-256("zeroclaim test hospital key")`, chain id {CHAIN_ID},
contract `SHA-256("zeroclaim test ledger contract")[:20]` = `{CONTRACT}`, detail root
`SHA-256("zeroclaim test detail root")`, patient commitment of ID `{ID_NUMBER}` with salt
`SHA-256("zeroclaim test patient salt")[:16]`. Signatures are RFC 6979 deterministic ECDSA.

| file | expected_error | derivation |
|---|---|---|
{rows}
"""


def build() -> dict[str, str]:
    """The content of every file of ``qr/`` by file name."""
    vectors = build_vectors()
    files = {
        f"{name}.json": json.dumps(v, indent=2, ensure_ascii=False) + "\n"
        for name, v in vectors.items()
    }
    files["README.md"] = readme(vectors)
    return files


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for stale in OUT.glob("*.json"):
        stale.unlink()
    for name, text in build().items():
        (OUT / name).write_text(text, encoding="utf-8")
        print(f"wrote {OUT / name}")


if __name__ == "__main__":
    main()
