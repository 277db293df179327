"""One uploaded item checked on its own: parsed and validated, its detail root and record hash
computed, its signature recovered, and its patient block checked; pure work that runs in
worker processes for large batches (``api.flows.upload`` judges and stores the result).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from api.refusals import Invalid, Refused
from verifier.canonical import (
    Domain,
    SignatureInvalid,
    SignedFields,
    detail_root,
    patient_commitment,
    recover_signer,
    signing_digest,
)
from verifier.his import looks_like_export, parse_export
from verifier.invoice import (
    ID_NUMBER_LIKE,
    Invoice,
    InvoiceInvalid,
    Problem,
    bill_json,
    parse_invoice,
    text_problem,
)

#: The columns of ``invoice_lines`` in the order of ``Prepared.lines`` (after the invoice id).
LINE_COLUMNS = (
    "line_no",
    "code",
    "name",
    "item_class",
    "unit_price",
    "quantity_milli",
    "amount",
    "department",
    "at_epoch",
    "utc_offset_minutes",
    "unit_price_e4",
    "self_amount",
    "self_rate_bp",
    "form",
    "specification",
    "unit",
    "charge_code",
)
_NO_DETAILS = (None,) * 7  # a format-1 line has none of the format-2 columns

#: Longest patient ID number (an 18-character resident ID, or a passport's number) and name.
MAX_ID_NUMBER = 32
MAX_PATIENT_NAME = 100
#: The patient's further details a format-2 bill prints (医保编号, 性别, 年龄), each optional
#: text of at most this many characters; kept encrypted with the name, never signed.
PATIENT_DETAILS = {"insurance_number": 32, "sex": 1, "age": 10}


@dataclass(frozen=True)
class Refusal:
    """Why one invoice of a batch was not accepted."""

    index: int
    reference: str
    code: str  # invalid_invoice, bad_signature, unknown_signer, wrong_hospital, ...
    problems: tuple[Problem, ...]
    kind: type[Refused] = Invalid  # Conflict for a duplicate, Forbidden for another's invoice

    def as_refused(self) -> Refused:
        """This refusal as the domain's refusal of its kind (the first problem its message)."""
        return self.kind(self.code, self.problems[0].reason if self.problems else self.code)

    def as_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "reference": self.reference,
            "code": self.code,
            "problems": [{"path": p.path, "reason": p.reason} for p in self.problems],
        }


@dataclass(frozen=True, slots=True)
class Prepared:
    """A verified invoice flattened for storage: plain values only, so that it crosses from
    a worker process cheaply (pickling the Invoice dataclasses costs more than parsing)."""

    index: int
    reference: str
    invoice_id: bytes
    hospital: str
    issued_at: datetime
    record_hash: bytes
    signature: bytes
    signer: str
    patient: Mapping[str, str] | None
    header: dict[str, Any]
    lines: list[tuple[Any, ...]]


def _offset_minutes(moment: datetime) -> int:
    offset = moment.utcoffset()
    assert offset is not None  # parse_invoice refuses naive times
    return int(offset.total_seconds()) // 60


def _flatten(
    index: int,
    invoice: Invoice,
    fields: SignedFields,
    record_hash: bytes,
    signature: bytes,
    signer: str,
    patient: Mapping[str, str] | None,
) -> Prepared:
    header = {
        "bill_code": invoice.bill_code,
        "bill_number": invoice.bill_number,
        "check_code": invoice.check_code,
        "hospital": invoice.hospital,
        "issued_at": invoice.issued_at,
        "issued_utc_offset_minutes": _offset_minutes(invoice.issued_at),
        "visit_type": invoice.visit_type.value,
        "admitted_on": invoice.admitted_on,
        "discharged_on": invoice.discharged_on,
        "department": invoice.department,
        "diagnoses": list(invoice.diagnoses),
        "total": invoice.total,
        "insurance_paid": invoice.insurance_paid,
        "patient_paid": invoice.patient_paid,
        "line_count": len(invoice.lines),
        "patient_commitment": invoice.patient_commitment,
        "detail_root": fields.detail_root,
        "format": invoice.format,
        "bill": bill_json(invoice.bill) if invoice.bill is not None else None,
    }
    lines = []
    for n, ln in enumerate(invoice.lines, start=1):
        offset = ln.time.utcoffset()
        assert offset is not None  # parse_invoice refuses naive times
        d = ln.details
        lines.append(
            (
                n,
                ln.code,
                ln.name,
                ln.item_class.value,
                ln.unit_price,
                ln.quantity_milli,
                ln.amount,
                ln.department,
                int(ln.time.timestamp()),
                int(offset.total_seconds()) // 60,
                *(
                    _NO_DETAILS
                    if d is None
                    else (
                        d.unit_price_e4,
                        d.self_amount,
                        d.self_rate_bp,
                        d.form,
                        d.specification,
                        d.unit,
                        d.charge,
                    )
                ),
            )
        )
    return Prepared(
        index,
        invoice.reference,
        fields.invoice_id,
        invoice.hospital,
        invoice.issued_at,
        record_hash,
        signature,
        signer,
        patient,
        header,
        lines,
    )


def refuse(
    index: int,
    reference: str,
    code: str,
    path: str,
    reason: str,
    kind: type[Refused] = Invalid,
) -> Refusal:
    return Refusal(index, reference, code, (Problem(path, reason),), kind)


def _prepare_one(
    index: int, item: Any, domain: Domain, received_at: datetime
) -> Prepared | Refusal:
    if not isinstance(item, Mapping):
        return refuse(
            index,
            "?",
            "invalid_item",
            "$",
            "each item is an object with 'invoice', 'signature' and optionally 'patient'",
        )
    patient = item.get("patient")
    try:
        if looks_like_export(item):
            invoice, patient = _from_export(item, received_at)
        else:
            invoice = parse_invoice(item.get("invoice"), received_at)  # type: ignore[arg-type]
    except InvoiceInvalid as exc:
        return Refusal(index, exc.reference, "invalid_invoice", exc.problems)
    reference = invoice.reference
    signature_hex = item.get("signature")
    try:
        signature = bytes.fromhex(signature_hex.removeprefix("0x"))  # type: ignore[union-attr]
    except (AttributeError, ValueError):
        return refuse(
            index, reference, "bad_signature", "signature", "must be the hex of a 65-byte signature"
        )
    fields = SignedFields.of(invoice, detail_root(invoice))
    record_hash = fields.record_hash()
    try:
        signer = recover_signer(signing_digest(domain, record_hash), signature)
    except SignatureInvalid as exc:
        return refuse(index, reference, "bad_signature", "signature", str(exc))
    if patient is not None:
        problem = _check_patient(patient, invoice)
        if problem is not None:
            return refuse(index, reference, *problem)
    return _flatten(index, invoice, fields, record_hash, signature, signer, patient)


def _from_export(item: Mapping[str, Any], received_at: datetime) -> tuple[Invoice, dict[str, str]]:
    """A HIS export item: ``{"his": {request, response}, "hospital", "salt", "signature"}``
    (docs/his-export.md); the bill and its patient as the hospital's signing tool mapped
    them."""
    hospital, salt = item.get("hospital"), item.get("salt")
    problems = []
    if not isinstance(hospital, str) or not hospital:
        problems.append(Problem("hospital", "is required: the issuing hospital's code"))
    try:
        salt_bytes = bytes.fromhex(salt) if isinstance(salt, str) else b""
    except ValueError:
        salt_bytes = b""
    if len(salt_bytes) < 16:
        problems.append(
            Problem("salt", "must be the hex of the patient commitment's 16 random bytes")
        )
    if problems:
        raise InvoiceInvalid("?", problems)
    assert isinstance(hospital, str)
    invoice, bill = parse_export(item["his"], hospital, salt_bytes, received_at)
    return invoice, bill.patient


def _check_patient(patient: Any, invoice: Invoice) -> tuple[str, str, str] | None:
    """Why the patient data cannot be kept: (code, path, reason), or None."""
    if not isinstance(patient, Mapping) or not all(
        isinstance(patient.get(k), str) for k in ("id_number", "name", "salt")
    ):
        return (
            "invalid_patient",
            "patient",
            "needs 'id_number', 'name' and 'salt' (hex) as strings",
        )
    for key, longest in (("id_number", MAX_ID_NUMBER), ("name", MAX_PATIENT_NAME)):
        if len(patient[key]) > longest:
            return ("invalid_patient", f"patient.{key}", f"is longer than {longest} characters")
        if (problem := text_problem(patient[key])) is not None:
            return ("invalid_patient", f"patient.{key}", problem)
    for key, longest in PATIENT_DETAILS.items():
        value = patient.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > longest:
            return ("invalid_patient", f"patient.{key}", f"is text of at most {longest} characters")
        if (problem := text_problem(value)) is not None:
            return ("invalid_patient", f"patient.{key}", problem)
    if patient.get("sex") not in (None, "M", "F"):
        return ("invalid_patient", "patient.sex", "must be 'M' or 'F'")
    if ID_NUMBER_LIKE.search(patient["name"]):
        # The name is printed on the invoice, an ID number never is (the value is not
        # repeated: it is personal data).
        return ("invalid_patient", "patient.name", "contains an ID number; send the name alone")
    try:
        salt = bytes.fromhex(patient["salt"].removeprefix("0x"))
        expected = patient_commitment(patient["id_number"], salt)
    except ValueError as exc:
        return ("patient_mismatch", "patient.salt", str(exc))
    if expected != invoice.patient_commitment:
        return (
            "patient_mismatch",
            "invoice.patient_commitment",
            "does not commit to the patient given",
        )
    return None


def prepare_chunk(
    start: int, items: Sequence[Any], chain_id: int, contract: str, received_at: datetime
) -> list[Prepared | Refusal]:
    domain = Domain(chain_id, contract)
    return [_prepare_one(start + i, item, domain, received_at) for i, item in enumerate(items)]


def csv_items(text: str) -> list[dict[str, Any]]:
    """The items of a CSV batch (docs/invoice-format.md), one per row. Raises ``Invalid``
    (``invalid_csv``) when the file cannot be read or holds no item or more than 5,000."""
    from api.adapters.hospital_files import read_csv_batch

    try:
        items = read_csv_batch(text)
    except (ValueError, KeyError) as exc:
        raise Invalid("invalid_csv", f"the CSV cannot be read: {exc}") from None
    if not items or len(items) > 5000:
        raise Invalid("invalid_csv", "a CSV batch holds 1 to 5,000 invoices")
    return items
