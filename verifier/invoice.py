"""The medical e-invoice (医疗电子票据) and its itemised detail: model, parsing, validation.

An invoice is identified by its bill code (票据代码, 8 digits) and bill number (票据号码,
10 digits); its check code (校验码) is 6 characters. Money is integer fen everywhere; a
quantity is an integer number of thousandths, so that 0.5 g or 2.25 tablets stay exact.

Parsing collects every problem at once: each ``Problem`` names the field path
(``lines[3].amount``) and the reason, and ``InvoiceInvalid`` carries them with the invoice's
identity, so that a hospital can fix a whole batch from one report.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

BILL_CODE = re.compile(r"^[0-9]{8}$")
BILL_NUMBER = re.compile(r"^[0-9]{10}$")
CHECK_CODE = re.compile(r"^[0-9A-Za-z]{6}$")
HOSPITAL_CODE = re.compile(r"^[0-9A-Za-z]{1,32}$")
# National medical insurance catalogue codes (医保目录编码): a letter then 4 to 29 letters/digits.
CATALOGUE_CODE = re.compile(r"^[A-Z][0-9A-Z]{4,29}$")
# ICD-10: a letter, two digits, optionally a dot and up to four more characters.
ICD10 = re.compile(r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?$")
MAX_LINES = 20_000
MAX_FEN = 2**63 - 1


class VisitType(enum.StrEnum):
    OUTPATIENT = "outpatient"  # 门诊
    INPATIENT = "inpatient"  # 住院


class ItemClass(enum.StrEnum):
    """Catalogue class of a line: 甲 A (fully covered), 乙 B (self-pay share first),
    丙 C (not covered), or self-pay (自费)."""

    A = "A"
    B = "B"
    C = "C"
    SELF_PAY = "self"


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason an invoice is refused: where (a field path) and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


class InvoiceError(Exception):
    """Root of the errors of the invoice model."""


class InvoiceInvalid(InvoiceError):
    """Raised when an invoice fails validation; ``problems`` lists every failing field."""

    def __init__(self, reference: str, problems: Sequence[Problem]) -> None:
        self.reference = reference
        self.problems = tuple(problems)
        shown = "; ".join(str(p) for p in self.problems[:5])
        more = f" (+{len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
        super().__init__(f"invoice {reference}: {shown}{more}")


@dataclass(frozen=True, slots=True)
class DetailLine:
    """One itemised line (明细): catalogue code, name, class, price x quantity = amount."""

    code: str
    name: str
    item_class: ItemClass
    unit_price: int  # fen
    quantity_milli: int  # thousandths of a unit
    amount: int  # fen
    department: str
    time: datetime


@dataclass(frozen=True, slots=True)
class Invoice:
    """A hospital's e-invoice with its itemised detail; see the module docstring."""

    bill_code: str
    bill_number: str
    check_code: str
    hospital: str
    issued_at: datetime
    visit_type: VisitType
    admitted_on: date | None
    discharged_on: date | None
    department: str
    diagnoses: tuple[str, ...]
    patient_commitment: bytes  # 32 bytes, see verifier.canonical.patient_commitment
    total: int  # fen
    insurance_paid: int  # fen paid by insurance at the till (统筹支付)
    patient_paid: int  # fen paid by the patient (个人支付)
    lines: tuple[DetailLine, ...]

    @property
    def reference(self) -> str:
        """The human identity of the invoice: bill code and number."""
        return f"{self.bill_code}-{self.bill_number}"


def line_amount(unit_price: int, quantity_milli: int) -> int:
    """unit price x quantity in fen, rounded half up (the till's rounding)."""
    return (unit_price * quantity_milli + 500) // 1000


class _Reader:
    """Reads fields out of a JSON object, noting a Problem for each bad one."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems

    def bad(self, path: str, reason: str) -> None:
        self.problems.append(Problem(path, reason))

    def text(
        self,
        obj: Mapping[str, Any],
        key: str,
        path: str,
        pattern: re.Pattern[str] | None = None,
        max_len: int = 200,
        what: str = "",
    ) -> str:
        value = obj.get(key)
        where = f"{path}{key}"
        if not isinstance(value, str) or not value.strip():
            self.bad(where, "is required" if value is None else "must be a non-empty string")
            return ""
        if len(value) > max_len:
            self.bad(where, f"is longer than {max_len} characters")
        elif pattern is not None and not pattern.match(value):
            self.bad(where, f"{value!r} is not {what or 'well-formed'}")
        return value

    def fen(self, obj: Mapping[str, Any], key: str, path: str) -> int:
        value = obj.get(key)
        where = f"{path}{key}"
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) or (isinstance(value, str) and "." in value):
                self.bad(where, f"must be an integer number of fen, got {value!r} (fractional)")
            else:
                self.bad(
                    where,
                    "is required"
                    if value is None
                    else f"must be an integer number of fen, got {value!r}",
                )
            return 0
        if value < 0:
            self.bad(where, f"must not be negative, got {value}")
        elif value > MAX_FEN:
            self.bad(where, "is too large")
        return value

    def moment(self, obj: Mapping[str, Any], key: str, path: str) -> datetime:
        value = obj.get(key)
        where = f"{path}{key}"
        try:
            parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            parsed = None
        if parsed is None:
            self.bad(
                where,
                "is required" if value is None else f"must be an ISO 8601 date-time, got {value!r}",
            )
            return datetime.min
        if parsed.tzinfo is None:
            self.bad(where, f"must carry a timezone (e.g. +08:00), got {value!r}")
        return parsed

    def day(self, obj: Mapping[str, Any], key: str, path: str) -> date | None:
        value = obj.get(key)
        if value is None:
            return None
        try:
            return date.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            pass
        self.bad(f"{path}{key}", f"must be an ISO 8601 date, got {value!r}")
        return None

    def choice(self, obj: Mapping[str, Any], key: str, path: str, enum_type: Any) -> Any:
        value = obj.get(key)
        try:
            return enum_type(value)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in enum_type)
            self.bad(f"{path}{key}", f"must be one of {allowed}, got {value!r}")
            return next(iter(enum_type))


def parse_invoice(data: Mapping[str, Any]) -> Invoice:
    """Builds an Invoice from its JSON form (see docs/invoice-format.md).

    Raises ``InvoiceInvalid`` listing every problem: malformed codes, negative or fractional
    money, lines that do not add up, discharge before admission, times without timezone.
    """
    problems: list[Problem] = []
    r = _Reader(problems)
    if not isinstance(data, Mapping):
        raise InvoiceInvalid("?", [Problem("$", "an invoice must be a JSON object")])
    bill_code = r.text(data, "bill_code", "", BILL_CODE, what="8 digits")
    bill_number = r.text(data, "bill_number", "", BILL_NUMBER, what="10 digits")
    reference = f"{bill_code or '?'}-{bill_number or '?'}"
    check_code = r.text(data, "check_code", "", CHECK_CODE, what="6 letters or digits")
    hospital = r.text(data, "hospital", "", HOSPITAL_CODE, what="1 to 32 letters or digits")
    issued_at = r.moment(data, "issued_at", "")
    visit_type = r.choice(data, "visit_type", "", VisitType)
    admitted_on = r.day(data, "admitted_on", "")
    discharged_on = r.day(data, "discharged_on", "")
    department = r.text(data, "department", "", max_len=100)
    commitment = _commitment(r, data.get("patient_commitment"))
    total = r.fen(data, "total", "")
    insurance_paid = r.fen(data, "insurance_paid", "")
    patient_paid = r.fen(data, "patient_paid", "")
    diagnoses = _diagnoses(r, data.get("diagnoses"))
    lines = _lines(r, data.get("lines"))

    if visit_type is VisitType.INPATIENT:
        if admitted_on is None:
            r.bad("admitted_on", "is required for an inpatient invoice")
        if discharged_on is None:
            r.bad("discharged_on", "is required for an inpatient invoice")
        if admitted_on and discharged_on and discharged_on < admitted_on:
            r.bad("discharged_on", f"{discharged_on} is before admission on {admitted_on}")
    elif admitted_on is not None or discharged_on is not None:
        r.bad("admitted_on", "only an inpatient invoice has admission and discharge dates")
    if not problems:
        line_sum = sum(line.amount for line in lines)
        if line_sum != total:
            r.bad("total", f"lines add up to {line_sum} fen, the total says {total}")
        if insurance_paid + patient_paid != total:
            r.bad(
                "patient_paid",
                f"insurance_paid + patient_paid = {insurance_paid + patient_paid}"
                f" fen, the total says {total}",
            )
    if problems:
        raise InvoiceInvalid(reference, problems)
    return Invoice(
        bill_code,
        bill_number,
        check_code,
        hospital,
        issued_at,
        visit_type,
        admitted_on,
        discharged_on,
        department,
        diagnoses,
        commitment,
        total,
        insurance_paid,
        patient_paid,
        lines,
    )


def _commitment(r: _Reader, value: Any) -> bytes:
    if isinstance(value, str) and re.fullmatch(r"0x[0-9a-f]{64}", value):
        return bytes.fromhex(value[2:])
    r.bad("patient_commitment", "must be 0x and 64 lowercase hex digits")
    return b"\x00" * 32


def _diagnoses(r: _Reader, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        r.bad("diagnoses", "must be a non-empty list of ICD-10 codes")
        return ()
    for i, code in enumerate(value):
        if not isinstance(code, str) or not ICD10.match(code):
            r.bad(f"diagnoses[{i}]", f"{code!r} is not an ICD-10 code")
    return tuple(str(c) for c in value)


def _lines(r: _Reader, value: Any) -> tuple[DetailLine, ...]:
    if not isinstance(value, list) or not value:
        r.bad("lines", "must be a non-empty list of detail lines")
        return ()
    if len(value) > MAX_LINES:
        r.bad("lines", f"has {len(value)} lines, at most {MAX_LINES} are accepted")
        return ()
    lines = []
    for i, raw in enumerate(value):
        path = f"lines[{i}]."
        if not isinstance(raw, Mapping):
            r.bad(f"lines[{i}]", "must be an object")
            continue
        before = len(r.problems)
        code = r.text(raw, "code", path, CATALOGUE_CODE, max_len=30, what="a catalogue code")
        name = r.text(raw, "name", path, max_len=200)
        item_class = r.choice(raw, "class", path, ItemClass)
        unit_price = r.fen(raw, "unit_price", path)
        quantity = raw.get("quantity_milli")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
            r.bad(
                f"{path}quantity_milli",
                f"must be a positive integer (thousandths), got {quantity!r}",
            )
            quantity = 0
        amount = r.fen(raw, "amount", path)
        department = r.text(raw, "department", path, max_len=100)
        when = r.moment(raw, "time", path)
        if len(r.problems) == before and amount != line_amount(unit_price, quantity):
            r.bad(
                f"{path}amount",
                f"{unit_price} fen x {quantity / 1000:g} = "
                f"{line_amount(unit_price, quantity)} fen, the line says {amount}",
            )
        lines.append(
            DetailLine(code, name, item_class, unit_price, quantity, amount, department, when)
        )
    return tuple(lines)


def invoice_to_json(invoice: Invoice) -> dict[str, Any]:
    """The JSON form that :func:`parse_invoice` reads."""
    out: dict[str, Any] = {
        "bill_code": invoice.bill_code,
        "bill_number": invoice.bill_number,
        "check_code": invoice.check_code,
        "hospital": invoice.hospital,
        "issued_at": invoice.issued_at.isoformat(),
        "visit_type": invoice.visit_type.value,
        "department": invoice.department,
        "diagnoses": list(invoice.diagnoses),
        "patient_commitment": "0x" + invoice.patient_commitment.hex(),
        "total": invoice.total,
        "insurance_paid": invoice.insurance_paid,
        "patient_paid": invoice.patient_paid,
        "lines": [
            {
                "code": ln.code,
                "name": ln.name,
                "class": ln.item_class.value,
                "unit_price": ln.unit_price,
                "quantity_milli": ln.quantity_milli,
                "amount": ln.amount,
                "department": ln.department,
                "time": ln.time.isoformat(),
            }
            for ln in invoice.lines
        ],
    }
    if invoice.admitted_on is not None:
        out["admitted_on"] = invoice.admitted_on.isoformat()
    if invoice.discharged_on is not None:
        out["discharged_on"] = invoice.discharged_on.isoformat()
    return out
