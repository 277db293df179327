"""The medical e-invoice (医疗电子票据) and its itemised detail: model, parsing, validation.

An invoice is identified by its bill code (票据代码, 8 digits) and bill number (票据号码,
10 digits); its check code (校验码) is 6 characters. Money is integer fen everywhere; a
quantity is an integer number of thousandths, so that 0.5 g or 2.25 tablets stay exact.

Parsing collects every problem at once: each ``Problem`` names the field path
(``lines[3].amount``) and the reason, and ``InvoiceInvalid`` carries them with the invoice's
identity, so that a hospital can fix a whole batch from one report.

Every value is checked to a range that every later step handles (the database's BIGINT, the
contract's uint64, the QR code's CBOR, epoch seconds, the printed invoice): money and
quantities are bounded, times carry a real UTC offset (within ±14:00, whole minutes, whole
seconds) in the years 2000 to 2100 and, when the time of arrival is given, not in its future;
text is valid Unicode without control characters. Codes match whole strings (``fullmatch``:
``$`` alone would accept a trailing newline). So what is stored reads back as it was sent.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from verifier import codes
from verifier.errors import VerifierError

# Whole-string patterns: use them with ``fullmatch``.
BILL_CODE = re.compile(r"[0-9]{8}")
BILL_NUMBER = re.compile(r"[0-9]{10}")
CHECK_CODE = re.compile(r"[0-9A-Za-z]{6}")
HOSPITAL_CODE = re.compile(r"[0-9A-Za-z]{1,32}")
# National medical insurance catalogue codes (医保目录编码): a letter then 4 to 29 letters/digits.
CATALOGUE_CODE = re.compile(r"[A-Z][0-9A-Z]{4,29}")
# ICD-10: a letter, two digits, optionally a dot and up to four more characters.
ICD10 = re.compile(r"[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?")
# What looks like a resident ID number (15 digits, or 17 digits and a check character): never
# in a name, since names are printed and ID numbers never are.
ID_NUMBER_LIKE = re.compile(r"[0-9]{15}|[0-9]{17}[0-9Xx]")
MAX_LINES = 20_000
MAX_DIAGNOSES = 50
#: 10 billion yuan: far above any medical bill, exact as a JavaScript number, and a million
#: such amounts still add up within a signed 64-bit integer (BIGINT) and the contract's uint64.
MAX_FEN = 10**12
#: A billion units of one item.
MAX_QUANTITY_MILLI = 10**12
#: Times and dates are accepted in these years (epoch seconds stay positive and small, every
#: database and the printed invoice handle them).
MIN_YEAR, MAX_YEAR = 2000, 2100
#: The real range of UTC offsets (UTC-12:00 to UTC+14:00 are in use), taken symmetrically.
MAX_UTC_OFFSET = timedelta(hours=14)
#: How far in the future of its arrival an issue or line time may be: hospital clocks drift.
MAX_CLOCK_SKEW = timedelta(minutes=5)
_EARLIEST = datetime(MIN_YEAR, 1, 1, tzinfo=UTC)
_LATEST = datetime(MAX_YEAR + 1, 1, 1, tzinfo=UTC)
# Control characters (Unicode category Cc), lone surrogates (Cs: what invalid UTF-8 decodes to
# with surrogateescape, and what JSON's "\\ud800" gives), line and paragraph separators.
_BAD_CHARACTER = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029]")


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


class Scheme(enum.StrEnum):
    """The insurance scheme the bill was settled under at the till (医保类型)."""

    EMPLOYEE = "employee"  # 职工基本医疗保险
    RESIDENT = "resident"  # 城乡居民基本医疗保险
    NONE = "none"  # 自费: not settled with insurance


@dataclass(frozen=True, slots=True)
class Payment:
    """The till's split of a format-2 bill, in fen.

    How it was paid: ``fund`` (统筹基金支付) + ``account`` (个人账户支付) + ``other`` (其他支付:
    大病 insurance, assistance, civil servants' subsidy...) + ``cash`` (个人现金支付) = the total.
    The patient's shares of it: ``copay`` (个人自付, within the catalogue) + ``deductible``
    (个人自负, below the deductible) + ``self_pay`` (个人自费, outside the catalogue) =
    ``account + cash``, what the patient bore.
    """

    fund: int
    account: int
    other: int
    cash: int
    copay: int
    deductible: int
    self_pay: int

    @property
    def funds(self) -> int:
        """What the funds and the personal account paid at the till: never paid again."""
        return self.fund + self.account + self.other


@dataclass(frozen=True, slots=True)
class ChargeCategory:
    """A printed charge category (收费项目: 西药费, 检查费, ...) and its total in fen."""

    code: str
    name: str
    amount: int


@dataclass(frozen=True, slots=True)
class BillDetails:
    """What a format-2 bill carries beyond format 1: the national e-bill's header fields,
    the till's split and the printed charge categories."""

    business_number: str  # 业务流水号
    visit_number: str  # 门诊号 or 住院号
    visit_on: date | None  # 就诊日期, of an outpatient visit
    scheme: Scheme
    payment: Payment
    charges: tuple[ChargeCategory, ...]


@dataclass(frozen=True, slots=True)
class LineDetails:
    """What a format-2 line carries beyond format 1."""

    form: str  # 剂型, may be empty
    specification: str  # 规格, may be empty
    unit: str  # 计量单位, may be empty
    unit_price_e4: int  # unit price in ten-thousandths of a yuan (the interface's 4 decimals)
    self_amount: int  # fen of the line the patient bears itself (自付/自费 part)
    self_rate_bp: int  # the line's self-pay share, basis points
    charge: str  # code of its charge category


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason an invoice is refused: where (a field path) and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


class InvoiceError(VerifierError):
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
    details: LineDetails | None = None  # format 2 only


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
    bill: BillDetails | None = None  # format 2 only

    @property
    def format(self) -> int:
        """1 for the first model, 2 for the national medical e-bill's."""
        return 1 if self.bill is None else 2

    @property
    def reference(self) -> str:
        """The human identity of the invoice: bill code and number."""
        return f"{self.bill_code}-{self.bill_number}"


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored and shown as text, or None: a lone surrogate (not valid
    Unicode; invalid UTF-8 read leniently gives one) or a control character."""
    found = _BAD_CHARACTER.search(value)
    if found is None:
        return None
    code = ord(found.group())
    if 0xD800 <= code <= 0xDFFF:
        return f"is not valid Unicode text (lone surrogate U+{code:04X}, e.g. from invalid UTF-8)"
    return f"must not contain the control character U+{code:04X}"


def _shown(value: object, limit: int = 60) -> str:
    """A refused value in a reason: its repr (which escapes surrogates and controls), cut short."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _reference(bill_code: str, bill_number: str) -> str:
    """The invoice named as the hospital sent it, even malformed, but safe to show."""
    parts = []
    for value in (bill_code, bill_number):
        if not value:
            parts.append("?")
        elif len(value) > 32 or text_problem(value) is not None:
            parts.append(_shown(value, 32))
        else:
            parts.append(value)
    return "-".join(parts)


def _latest_day(received_at: datetime) -> date:
    """The latest calendar day anywhere on Earth at ``received_at`` (plus the clock skew)."""
    return (received_at + MAX_CLOCK_SKEW).astimezone(timezone(MAX_UTC_OFFSET)).date()


def line_amount(unit_price: int, quantity_milli: int) -> int:
    """unit price x quantity in fen, rounded half up (the till's rounding)."""
    return (unit_price * quantity_milli + 500) // 1000


def line_amount_e4(unit_price_e4: int, quantity_milli: int) -> int:
    """A format-2 line's amount in fen: unit price (yuan x 10^4) x quantity (thousandths),
    rounded half up to the fen once, at the end (the one rounding rule of format 2)."""
    return (unit_price_e4 * quantity_milli + 50_000) // 100_000


def fen_of_e4(value_e4: int) -> int:
    """Ten-thousandths of a yuan to fen, rounded half up (for display of a unit price)."""
    return (value_e4 + 50) // 100


class _Reader:
    """Reads fields out of a JSON object, noting a Problem for each bad one."""

    def __init__(self, problems: list[Problem], received_at: datetime | None) -> None:
        self.problems = problems
        self.received_at = received_at

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
        elif (problem := text_problem(value)) is not None:
            self.bad(where, problem)
        elif pattern is not None and not pattern.fullmatch(value):
            self.bad(where, f"{_shown(value)} is not {what or 'well-formed'}")
        return value

    def fen(self, obj: Mapping[str, Any], key: str, path: str) -> int:
        value = obj.get(key)
        where = f"{path}{key}"
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) or (isinstance(value, str) and "." in value):
                self.bad(
                    where, f"must be an integer number of fen, got {_shown(value)} (fractional)"
                )
            else:
                self.bad(
                    where,
                    "is required"
                    if value is None
                    else f"must be an integer number of fen, got {_shown(value)}",
                )
            return 0
        if value < 0:
            self.bad(where, f"must not be negative, got {value}")
        elif value > MAX_FEN:
            self.bad(where, f"must be at most {MAX_FEN} fen")
        return value

    def optional_text(self, obj: Mapping[str, Any], key: str, path: str, max_len: int) -> str:
        """A text field that may be absent or empty (read as "")."""
        value = obj.get(key)
        if value is None or value == "":
            return ""
        where = f"{path}{key}"
        if not isinstance(value, str):
            self.bad(where, f"must be a string, got {_shown(value)}")
            return ""
        if len(value) > max_len:
            self.bad(where, f"is longer than {max_len} characters")
        elif (problem := text_problem(value)) is not None:
            self.bad(where, problem)
        return value

    def coded(
        self,
        obj: Mapping[str, Any],
        key: str,
        path: str,
        judge: Callable[[str], str | None],
        max_len: int = 40,
    ) -> str:
        """A code judged by one of ``verifier.codes``' functions, which says what it should be."""
        value = self.text(obj, key, path, max_len=max_len)
        if (
            value
            and len(value) <= max_len
            and text_problem(value) is None
            and (reason := judge(value)) is not None
        ):
            self.bad(f"{path}{key}", f"{_shown(value)}: {reason}")
        return value

    def integer(
        self, obj: Mapping[str, Any], key: str, path: str, low: int, high: int, what: str
    ) -> int:
        value = obj.get(key)
        where = f"{path}{key}"
        if isinstance(value, bool) or not isinstance(value, int):
            self.bad(
                where,
                "is required"
                if value is None
                else f"must be an integer ({what}), got {_shown(value)}",
            )
            return 0
        if not low <= value <= high:
            self.bad(where, f"must be from {low} to {high} ({what}), got {value}")
            return 0
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
                "is required"
                if value is None
                else f"must be an ISO 8601 date-time, got {_shown(value)}",
            )
            return datetime.min
        offset = parsed.utcoffset()
        if offset is None:
            self.bad(where, f"must carry a timezone (e.g. +08:00), got {_shown(value)}")
        elif abs(offset) > MAX_UTC_OFFSET or offset % timedelta(minutes=1):
            self.bad(where, f"has UTC offset {offset}: offsets are whole minutes within ±14:00")
        elif parsed.microsecond:
            self.bad(where, "must be whole seconds (the signed form counts seconds)")
        elif not _EARLIEST <= parsed < _LATEST:
            self.bad(where, f"must be in the years {MIN_YEAR} to {MAX_YEAR}, got {_shown(value)}")
        elif self.received_at is not None and parsed > self.received_at + MAX_CLOCK_SKEW:
            self.bad(
                where,
                f"{_shown(value)} is in the future: the invoice arrived at "
                f"{self.received_at.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}",
            )
        return parsed

    def day(self, obj: Mapping[str, Any], key: str, path: str) -> date | None:
        value = obj.get(key)
        if value is None:
            return None
        where = f"{path}{key}"
        try:
            parsed = date.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            parsed = None
        if parsed is None:
            self.bad(where, f"must be an ISO 8601 date, got {_shown(value)}")
        elif not MIN_YEAR <= parsed.year <= MAX_YEAR:
            self.bad(where, f"must be in the years {MIN_YEAR} to {MAX_YEAR}, got {_shown(value)}")
        elif self.received_at is not None and parsed > _latest_day(self.received_at):
            self.bad(where, f"{_shown(value)} is in the future")
        return parsed

    def choice(self, obj: Mapping[str, Any], key: str, path: str, enum_type: Any) -> Any:
        value = obj.get(key)
        try:
            return enum_type(value)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in enum_type)
            self.bad(f"{path}{key}", f"must be one of {allowed}, got {_shown(value)}")
            return next(iter(enum_type))


def parse_invoice(data: Mapping[str, Any], received_at: datetime | None = None) -> Invoice:
    """Builds an Invoice from its JSON form (see docs/invoice-format.md): format 1 (no
    ``format`` field) or format 2 (``"format": 2``, the national medical e-bill's fields).

    Raises ``InvoiceInvalid`` listing every problem: malformed codes, negative or fractional
    money, amounts or quantities out of range, lines that do not add up, discharge before
    admission, times without timezone or outside the accepted years, text that is not valid
    Unicode. With ``received_at`` (the time of arrival, timezone-aware), times and dates in its
    future (beyond ``MAX_CLOCK_SKEW``) are refused too.
    """
    if not isinstance(data, Mapping):
        raise InvoiceInvalid("?", [Problem("$", "an invoice must be a JSON object")])
    version = data.get("format", 1)
    if version == 2 and not isinstance(version, bool):
        return _parse_format2(data, received_at)
    if version != 1 or isinstance(version, bool):
        raise InvoiceInvalid(
            _reference(str(data.get("bill_code") or ""), str(data.get("bill_number") or "")),
            [Problem("format", f"must be 1 or 2, got {_shown(version)}")],
        )
    problems: list[Problem] = []
    r = _Reader(problems, received_at)
    bill_code = r.text(data, "bill_code", "", BILL_CODE, what="8 digits")
    bill_number = r.text(data, "bill_number", "", BILL_NUMBER, what="10 digits")
    reference = _reference(bill_code, bill_number)
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
        _stay(r, admitted_on, discharged_on)
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


#: At most this many printed charge categories (收费项目) on one bill.
MAX_CHARGES = 50
_PAYMENT_FIELDS = ("fund", "account", "other", "cash", "copay", "deductible", "self_pay")


def _parse_format2(data: Mapping[str, Any], received_at: datetime | None) -> Invoice:
    """Format 2: the national medical e-bill (see docs/invoice-format.md, format 2)."""
    problems: list[Problem] = []
    r = _Reader(problems, received_at)
    bill_code = r.text(data, "bill_code", "", BILL_CODE, what="8 digits")
    if BILL_CODE.fullmatch(bill_code) and (reason := codes.bill_code_problem(bill_code)):
        r.bad("bill_code", f"{bill_code!r}: {reason}")
    bill_number = r.text(data, "bill_number", "", BILL_NUMBER, what="10 digits")
    reference = _reference(bill_code, bill_number)
    check_code = codes.normalise_check_code(
        r.coded(data, "check_code", "", codes.check_code_problem, max_len=6)
    )
    hospital = r.coded(data, "hospital", "", codes.hospital_code_problem, max_len=12)
    issued_at = r.moment(data, "issued_at", "")
    business_number = r.text(data, "business_number", "", max_len=50)
    visit_type = r.choice(data, "visit_type", "", VisitType)
    visit_number = r.text(data, "visit_number", "", max_len=50)
    visit_on = r.day(data, "visit_on", "")
    admitted_on = r.day(data, "admitted_on", "")
    discharged_on = r.day(data, "discharged_on", "")
    department = r.text(data, "department", "", max_len=100)
    scheme = r.choice(data, "scheme", "", Scheme)
    commitment = _commitment(r, data.get("patient_commitment"))
    total = r.fen(data, "total", "")
    payment = _payment(r, data.get("payment"))
    diagnoses = _diagnoses(r, data.get("diagnoses"), codes.icd10_problem)
    charges = _charges(r, data.get("charges"))
    lines = _lines2(r, data.get("lines"), {c.code for c in charges})

    if visit_type is VisitType.INPATIENT:
        _stay(r, admitted_on, discharged_on)
    else:
        if visit_on is None:
            r.bad("visit_on", "is required for an outpatient bill (the date of the visit)")
        if admitted_on is not None or discharged_on is not None:
            r.bad("admitted_on", "only an inpatient bill has admission and discharge dates")
    if not problems and payment is not None:
        _check_sums(r, total, scheme, payment, charges, lines)
    if problems:
        raise InvoiceInvalid(reference, problems)
    assert payment is not None
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
        payment.funds,
        payment.cash,
        lines,
        BillDetails(business_number, visit_number, visit_on, scheme, payment, charges),
    )


def _stay(r: _Reader, admitted_on: date | None, discharged_on: date | None) -> None:
    if admitted_on is None:
        r.bad("admitted_on", "is required for an inpatient invoice")
    if discharged_on is None:
        r.bad("discharged_on", "is required for an inpatient invoice")
    if admitted_on and discharged_on and discharged_on < admitted_on:
        r.bad("discharged_on", f"{discharged_on} is before admission on {admitted_on}")


def _payment(r: _Reader, value: Any) -> Payment | None:
    if not isinstance(value, Mapping):
        r.bad("payment", "must be an object with " + ", ".join(_PAYMENT_FIELDS) + " (fen)")
        return None
    return Payment(*(r.fen(value, key, "payment.") for key in _PAYMENT_FIELDS))


def _charges(r: _Reader, value: Any) -> tuple[ChargeCategory, ...]:
    if not isinstance(value, list) or not value:
        r.bad("charges", "must be a non-empty list of charge categories (收费项目)")
        return ()
    if len(value) > MAX_CHARGES:
        r.bad("charges", f"has {len(value)} categories, at most {MAX_CHARGES} are accepted")
        return ()
    found: list[ChargeCategory] = []
    seen: set[str] = set()
    for i, raw in enumerate(value):
        path = f"charges[{i}]."
        if not isinstance(raw, Mapping):
            r.bad(f"charges[{i}]", "must be an object")
            continue
        code = r.text(raw, "code", path, max_len=20)
        if code in seen:
            r.bad(f"{path}code", f"{code!r} appears twice: each category once")
        seen.add(code)
        found.append(
            ChargeCategory(code, r.text(raw, "name", path, max_len=50), r.fen(raw, "amount", path))
        )
    return tuple(found)


def _lines2(r: _Reader, value: Any, charge_codes: set[str]) -> tuple[DetailLine, ...]:
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
        code = r.coded(raw, "code", path, codes.line_code_problem, max_len=30)
        name = r.text(raw, "name", path, max_len=200)
        form = r.optional_text(raw, "form", path, 50)
        specification = r.optional_text(raw, "specification", path, 100)
        unit = r.optional_text(raw, "unit", path, 20)
        item_class = r.choice(raw, "class", path, ItemClass)
        price_e4 = r.integer(raw, "unit_price_e4", path, 0, MAX_FEN * 100, "yuan x 10^4")
        quantity = r.integer(raw, "quantity_milli", path, 1, MAX_QUANTITY_MILLI, "thousandths")
        amount = r.fen(raw, "amount", path)
        self_amount = r.fen(raw, "self_amount", path)
        self_rate = r.integer(raw, "self_rate_bp", path, 0, 10_000, "basis points")
        charge = r.text(raw, "charge", path, max_len=20)
        department = r.text(raw, "department", path, max_len=100)
        when = r.moment(raw, "time", path)
        if len(r.problems) == before:
            if charge not in charge_codes:
                r.bad(f"{path}charge", f"{charge!r} is none of the bill's charge categories")
            if amount != line_amount_e4(price_e4, quantity):
                r.bad(
                    f"{path}amount",
                    f"{price_e4 / 10_000:.4f} yuan x {quantity / 1000:g} = "
                    f"{line_amount_e4(price_e4, quantity)} fen (rounded half up), "
                    f"the line says {amount}",
                )
            if self_amount > amount:
                r.bad(f"{path}self_amount", f"{self_amount} fen is more than the line's {amount}")
        details = LineDetails(form, specification, unit, price_e4, self_amount, self_rate, charge)
        lines.append(
            DetailLine(
                code,
                name,
                item_class,
                fen_of_e4(price_e4),
                quantity,
                amount,
                department,
                when,
                details,
            )
        )
    return tuple(lines)


def _check_sums(
    r: _Reader,
    total: int,
    scheme: Scheme,
    payment: Payment,
    charges: tuple[ChargeCategory, ...],
    lines: tuple[DetailLine, ...],
) -> None:
    """Every sum the bill prints: the split, the shares, the categories and their lines."""
    paid = payment.fund + payment.account + payment.other + payment.cash
    if paid != total:
        r.bad(
            "payment",
            f"fund + account + other + cash = {paid} fen, the total says {total}",
        )
    shares = payment.copay + payment.deductible + payment.self_pay
    if shares != payment.account + payment.cash:
        r.bad(
            "payment",
            f"copay + deductible + self_pay = {shares} fen, but the patient paid account + cash"
            f" = {payment.account + payment.cash}",
        )
    if scheme is Scheme.NONE and (payment.fund or payment.account):
        r.bad(
            "payment",
            f"a bill not settled with insurance (scheme none) has no fund or account payment,"
            f" got fund {payment.fund} and account {payment.account} fen",
        )
    categories = sum(c.amount for c in charges)
    if categories != total:
        r.bad("charges", f"the categories add up to {categories} fen, the total says {total}")
    by_charge: dict[str, int] = {}
    for line in lines:
        assert line.details is not None
        by_charge[line.details.charge] = by_charge.get(line.details.charge, 0) + line.amount
    for i, category in enumerate(charges):
        got = by_charge.get(category.code, 0)
        if got != category.amount:
            r.bad(
                f"charges[{i}].amount",
                f"the lines of {category.code!r} add up to {got} fen, the category says "
                f"{category.amount}",
            )


def _commitment(r: _Reader, value: Any) -> bytes:
    if isinstance(value, str) and re.fullmatch(r"0x[0-9a-f]{64}", value):
        return bytes.fromhex(value[2:])
    r.bad("patient_commitment", "must be 0x and 64 lowercase hex digits")
    return b"\x00" * 32


def _diagnoses(
    r: _Reader, value: Any, judge: Callable[[str], str | None] | None = None
) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        r.bad("diagnoses", "must be a non-empty list of ICD-10 codes")
        return ()
    if len(value) > MAX_DIAGNOSES:
        r.bad("diagnoses", f"has {len(value)} codes, at most {MAX_DIAGNOSES} are accepted")
        return ()
    for i, code in enumerate(value):
        if not isinstance(code, str) or text_problem(code) is not None or len(code) > 20:
            r.bad(f"diagnoses[{i}]", f"{_shown(code)} is not an ICD-10 code")
        elif judge is not None:
            if (reason := judge(code)) is not None:
                r.bad(f"diagnoses[{i}]", f"{_shown(code)}: {reason}")
        elif not ICD10.fullmatch(code):
            r.bad(f"diagnoses[{i}]", f"{_shown(code)} is not an ICD-10 code")
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
                f"must be a positive integer (thousandths), got {_shown(quantity)}",
            )
            quantity = 0
        elif quantity > MAX_QUANTITY_MILLI:
            r.bad(f"{path}quantity_milli", f"must be at most {MAX_QUANTITY_MILLI} (thousandths)")
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
    """The JSON form that :func:`parse_invoice` reads (format 1 or 2, as the invoice is)."""
    if invoice.bill is not None:
        return _format2_json(invoice, invoice.bill)
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


def _format2_json(invoice: Invoice, bill: BillDetails) -> dict[str, Any]:
    out: dict[str, Any] = {
        "format": 2,
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
        **bill_json(bill),
        "lines": [_line2_json(line) for line in invoice.lines],
    }
    if bill.visit_on is None:
        del out["visit_on"]
    for key, day in (
        ("admitted_on", invoice.admitted_on),
        ("discharged_on", invoice.discharged_on),
    ):
        if day is not None:
            out[key] = day.isoformat()
    return out


def _line2_json(line: DetailLine) -> dict[str, Any]:
    details = line.details
    assert details is not None, "a format-2 invoice has format-2 lines"
    out: dict[str, Any] = {
        "code": line.code,
        "name": line.name,
        "class": line.item_class.value,
        "unit_price_e4": details.unit_price_e4,
        "quantity_milli": line.quantity_milli,
        "amount": line.amount,
        "self_amount": details.self_amount,
        "self_rate_bp": details.self_rate_bp,
        "charge": details.charge,
        "department": line.department,
        "time": line.time.isoformat(),
    }
    for key in ("form", "specification", "unit"):
        if value := getattr(details, key):
            out[key] = value
    return out


def bill_json(bill: BillDetails) -> dict[str, Any]:
    """A format-2 bill's further fields as JSON (how the service stores them)."""
    return {
        "business_number": bill.business_number,
        "visit_number": bill.visit_number,
        "visit_on": bill.visit_on.isoformat() if bill.visit_on else None,
        "scheme": bill.scheme.value,
        "payment": {key: getattr(bill.payment, key) for key in _PAYMENT_FIELDS},
        "charges": [{"code": c.code, "name": c.name, "amount": c.amount} for c in bill.charges],
    }


def bill_of_json(data: Mapping[str, Any]) -> BillDetails:
    """The inverse of :func:`bill_json`, for values the service stored itself."""
    visit_on = data.get("visit_on")
    return BillDetails(
        data["business_number"],
        data["visit_number"],
        date.fromisoformat(visit_on) if visit_on else None,
        Scheme(data["scheme"]),
        Payment(**{key: int(data["payment"][key]) for key in _PAYMENT_FIELDS}),
        tuple(ChargeCategory(c["code"], c["name"], int(c["amount"])) for c in data["charges"]),
    )
