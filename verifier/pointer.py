"""The pointer QR of existing fiscal medical e-bills (财政电子票据): parsing and matching.

A fiscal e-bill's QR code carries no signature; it only names the bill (bill code 票据代码,
bill number 票据号码, check code 校验码, amount, issue date) so that a checker can look it up.
The verifier accepts it by checking those elements against the ledger's record
(:func:`matches`). The whole text is first stripped of surrounding white space (scanners often
append a newline) and refused above ``MAX_POINTER_CHARS`` characters. Every form is a URL
``http(s)://<any host>/<any path>?...``; its parameters are read from the query, or, for
hash-routed pages, from the query part of the fragment (``#/check?...``). Each value is
percent-decoded (twice when a platform encoded it twice: no valid value contains ``%``).

**d form** (``form="url"``): the parameter named exactly ``d`` holds the elements joined by
underscores::

    billcode_billnumber_checkcode_amount_date     e.g. 33082025_0000000001_c00001_64.50_20250301
    billcode_billnumber_checkcode_date            (platforms that leave the amount out)

Other parameters are ignored; a second ``d`` is refused as ambiguous.

**Named form** (``form="named"``): one parameter per element, under either of two names: the
names of the issue that reported the form, and those the medical e-bill platform interface
(Bosssoft v3.2.0, ``getEBillPicUrl`` and the issuing responses) gives the same elements::

    bill code     invoice_code    or billBatchCode  (电子票据代码)   required
    bill number   invoice_number  or billNo         (电子票据号码)   required
    check code    check_code      or random         (电子校验码)     required
    amount        totalAmt                          (票据总金额)     optional, yuan
    date          ivcDateTime                       (开票时间)       optional

e.g. ``https://host/h5?billBatchCode=33082025&billNo=0000000001&random=c00001``. Names are
matched exactly (case included); other parameters are ignored. An element given twice (under
one name or both) is refused as ambiguous, and so is a URL with both a ``d`` parameter and
named elements. ``ivcDateTime`` is ``yyyyMMddHHmmssSSS`` as the interface writes it (its date
part is kept, the time must be a real one) or a date as below.

**Elements**, the same in both forms (ASCII digits only, never other Unicode digits):

- bill code: exactly 8 digits (the structure of ``verifier.codes.bill_code_problem`` is not
  required here: the ledger holds older bills, and :func:`matches` decides);
- bill number: 8 to 10 digits, kept exactly as printed. The ledger's numbers have 10 digits;
  some issuers print fewer, and left-padding would guess how the issuer shortened them, so a
  shorter number is kept and :func:`matches` reports it as a ``bill_number`` mismatch;
- check code: 6 ASCII letters or digits, kept as printed; :func:`matches` compares it without
  regard to case (``4BA882`` is ``4ba882``), in constant time;
- amount: yuan as ``0`` or digits without a leading zero (at most 16), then optionally ``.`` and
  1 or 2 decimals; converted to integer fen by string arithmetic, never through a float
  (``123.4`` is 12340 fen). A sign, a third decimal, ``.5``, ``5.`` and ``1,000`` are refused;
- date: ``YYYYMMDD`` or ``YYYY-MM-DD``, a real calendar date.

**Tax invoice QR codes are not pointers.** Comma-separated fields starting ``01,`` are the QR
code of a tax invoice (发票), never of a medical e-bill: a VAT invoice (增值税发票)
``01,<type>,<code: 10 or 12 digits>,<number: 8 digits>,<pre-tax amount>,<date>,<check
code: 20 digits, or empty>,<crc>`` with type ``01``, ``04``, ``08``, ``10``, ``11`` or ``14``;
a fully digital e-invoice (全电发票) ``01,<31 or 32>,,<number: 20 digits>,<amount>,<date>,,<crc>``.
They are recognised (``01,`` and a two-digit type) and refused with :class:`TaxInvoiceQr`,
whose ``kind`` is ``vat``, ``digital`` or ``other`` (another type of tax invoice) and whose
reason tells the holder, in Chinese and English, that a tax invoice cannot be claimed here.

``parse_pointer`` raises :class:`PointerMalformed` (or its :class:`TaxInvoiceQr`) for anything
else, and no other exception for any string. Parsing checks form only; :func:`matches`
compares with the ledger. Test vectors: ``tests/verifier/vectors/pointer/`` (each file says
how its expected value follows); docs/qr-format.md section 6 gives one example of each form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import ClassVar, Final, Literal
from urllib.parse import SplitResult, unquote, urlsplit

from verifier.codes import same_check_code
from verifier.qr import QrError

MAX_POINTER_CHARS: Final = 2048
# Asia/Shanghai has been UTC+8 without daylight saving since 1991, before any e-bill, so a
# fixed offset gives the local date without depending on the host's tz database.
CHINA_STANDARD_TIME: Final = timezone(timedelta(hours=8), "Asia/Shanghai")

_BILL_CODE: Final = re.compile(r"[0-9]{8}")
_BILL_NUMBER: Final = re.compile(r"[0-9]{8,10}")
_CHECK_CODE: Final = re.compile(r"[0-9A-Za-z]{6}")
_AMOUNT: Final = re.compile(r"(0|[1-9][0-9]{0,15})(?:\.([0-9]{1,2}))?")
_DATE: Final = re.compile(r"([0-9]{4})-?([0-9]{2})-?([0-9]{2})")
_DATE_TIME_MS: Final = re.compile(r"([0-9]{8})([0-9]{2})([0-9]{2})([0-9]{2})[0-9]{3}")
_TAX_INVOICE: Final = re.compile(r"01,([0-9]{2}),")
_VAT_TYPES: Final = frozenset({"01", "04", "08", "10", "11", "14"})
_DIGITAL_TYPES: Final = frozenset({"31", "32"})

PointerForm = Literal["url", "named"]
PointerField = Literal["bill_code", "bill_number", "check_code", "amount_fen", "issued_on"]
TaxInvoiceKind = Literal["vat", "digital", "other"]
_Element = Literal["bill_code", "bill_number", "check_code", "amount", "date"]

#: The named form's parameter names of each element (see the module docstring).
NAMED_PARAMETERS: Final[dict[_Element, tuple[str, ...]]] = {
    "bill_code": ("invoice_code", "billBatchCode"),
    "bill_number": ("invoice_number", "billNo"),
    "check_code": ("check_code", "random"),
    "amount": ("totalAmt",),
    "date": ("ivcDateTime",),
}
_ELEMENT_OF: Final = {name: e for e, names in NAMED_PARAMETERS.items() for name in names}
_REQUIRED: Final[tuple[_Element, ...]] = ("bill_code", "bill_number", "check_code")
#: What a tax invoice of each kind is called, in Chinese and in English.
TAX_INVOICE_NAMES: Final[dict[TaxInvoiceKind, tuple[str, str]]] = {
    "vat": ("增值税发票", "a VAT invoice (增值税发票)"),
    "digital": ("全电发票（全面数字化的电子发票）", "a fully digital e-invoice (全电发票)"),
    "other": ("税务发票", "a tax invoice (发票)"),
}


class PointerMalformed(QrError):
    """Raised when a text is not a well-formed pointer QR of either form; ``reason`` says why."""

    prefix: ClassVar[str] = "malformed pointer QR: "

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"{self.prefix}{reason}")


class TaxInvoiceQr(PointerMalformed):
    """Raised when the text is a tax invoice's QR code (``01,<type>,...``), not a medical
    e-bill's: ``kind`` is ``vat`` (增值税发票), ``digital`` (全电发票) or ``other``,
    ``type_code`` the invoice type as printed; ``reason`` is the sentence for the holder,
    ``"<中文>；<English>"``, that it cannot be claimed here."""

    prefix: ClassVar[str] = "not a medical e-bill: "

    def __init__(self, kind: TaxInvoiceKind, type_code: str) -> None:
        self.kind: TaxInvoiceKind = kind
        self.type_code = type_code
        self.invoice_zh, self.invoice_en = TAX_INVOICE_NAMES[kind]
        super().__init__(
            f"这是{self.invoice_zh}的二维码，不是医疗电子票据，不能在此报销；"
            f"this is the QR code of {self.invoice_en}, not of a medical e-bill:"
            " it cannot be claimed here"
        )


@dataclass(frozen=True)
class PointerQr:
    """The elements a pointer QR names; constructing one validates them (PointerMalformed)."""

    bill_code: str  # 票据代码, 8 digits
    bill_number: str  # 票据号码, 8 to 10 digits as printed
    check_code: str | None  # 校验码, 6 letters or digits as printed (case kept)
    amount_fen: int | None  # None when the code leaves the amount out
    issued_on: date | None  # the issue date as printed (China Standard Time); None if left out
    form: PointerForm

    def __post_init__(self) -> None:
        _check("bill code", self.bill_code, _BILL_CODE, "8 digits")
        _check("bill number", self.bill_number, _BILL_NUMBER, "8 to 10 digits")
        if self.check_code is not None:
            _check("check code", self.check_code, _CHECK_CODE, "6 letters or digits")
        if self.amount_fen is not None and (
            isinstance(self.amount_fen, bool)
            or not isinstance(self.amount_fen, int)
            or self.amount_fen < 0
        ):
            raise PointerMalformed(
                f"amount must be a non-negative integer of fen, got {self.amount_fen!r}"
            )
        if self.form not in ("url", "named"):
            raise PointerMalformed(f"form must be 'url' or 'named', got {self.form!r}")


@dataclass(frozen=True)
class BillRecord:
    """The ledger's (trusted) values of a bill that a pointer is compared with."""

    bill_code: str
    bill_number: str
    check_code: str
    total_fen: int
    issued_at: datetime  # timezone-aware


@dataclass(frozen=True)
class Mismatch:
    """One element where a pointer disagrees with the record.

    ``expected`` is the record's value (trusted), ``actual`` the pointer's; the amount is in
    fen and the date is the record's issue date in China Standard Time. ``expected`` is for
    the caller's own checks and is never shown to whoever presented the pointer: a
    verification names the element that differs, not what it should be.
    """

    field: PointerField
    expected: str | int | date
    actual: str | int | date | None


def looks_like_pointer(text: str) -> bool:
    """Whether ``text`` has the shape of a pointer QR, or of a tax invoice's QR that
    :func:`parse_pointer` refuses with its own sentence: a URL with a ``d=`` or a named
    element's parameter, or text starting ``01,``.

    A cheap routing test (no parsing); :func:`parse_pointer` may still refuse the text, but
    every text it accepts looks like a pointer.
    """
    if not isinstance(text, str) or len(text) > MAX_POINTER_CHARS:
        return False
    text = text.strip()
    if text[:8].lower().startswith(("http://", "https://")):
        return "d=" in text or any(f"{name}=" in text for name in _ELEMENT_OF)
    return text.startswith("01,")


def parse_pointer(text: str) -> PointerQr:
    """Parse a pointer QR text of either form (see the module docstring).

    Raises ``TaxInvoiceQr`` for a tax invoice's QR code, ``PointerMalformed`` for any other
    text that is not a pointer, never another exception. The caller still checks the
    elements against the ledger (:func:`matches`).
    """
    if not isinstance(text, str):
        raise PointerMalformed(f"a pointer QR is text, got {type(text).__name__}")
    if len(text) > MAX_POINTER_CHARS:
        raise PointerMalformed(f"{len(text)} characters, at most {MAX_POINTER_CHARS} are accepted")
    text = text.strip()
    if not text:
        raise PointerMalformed("empty text")
    if text[:8].lower().startswith(("http://", "https://")):
        return _parse_url(text)
    tax = _TAX_INVOICE.match(text)
    if tax is not None:
        raise TaxInvoiceQr(_tax_invoice_kind(tax.group(1), text.split(",")), tax.group(1))
    if text.startswith("01,"):
        raise PointerMalformed(
            "comma-separated fields from 01, are the form of a tax invoice's QR code, not of a"
            " medical e-bill's, and these lack its two-digit invoice type"
        )
    raise PointerMalformed("not an http(s) URL, the form of a fiscal e-bill's QR code")


def matches(pointer: PointerQr, record: BillRecord) -> list[Mismatch]:
    """The elements where ``pointer`` disagrees with ``record``; empty when it names it.

    Bill code, bill number and check code are always compared (a pointer without a check code
    mismatches: bill codes and numbers are sequential and guessable, the check code is what
    proves the holder saw the bill, compared in constant time and without regard to case);
    the amount and the date only when the pointer has them, the date against the record's
    issue time in China Standard Time. Raises ``ValueError`` for a record whose
    ``issued_at`` is naive.
    """
    if record.issued_at.utcoffset() is None:
        raise ValueError("the record's issued_at must be timezone-aware")
    found: list[Mismatch] = []
    if pointer.bill_code != record.bill_code:
        found.append(Mismatch("bill_code", record.bill_code, pointer.bill_code))
    if pointer.bill_number != record.bill_number:
        found.append(Mismatch("bill_number", record.bill_number, pointer.bill_number))
    if pointer.check_code is None or not same_check_code(pointer.check_code, record.check_code):
        found.append(Mismatch("check_code", record.check_code, pointer.check_code))
    if pointer.amount_fen is not None and pointer.amount_fen != record.total_fen:
        found.append(Mismatch("amount_fen", record.total_fen, pointer.amount_fen))
    local_day = record.issued_at.astimezone(CHINA_STANDARD_TIME).date()
    if pointer.issued_on is not None and pointer.issued_on != local_day:
        found.append(Mismatch("issued_on", local_day, pointer.issued_on))
    return found


def yuan_to_fen(text: str) -> int:
    """Integer fen of a yuan amount text (``"123.4"`` -> 12340); raises PointerMalformed."""
    match = _AMOUNT.fullmatch(text)
    if match is None:
        raise PointerMalformed(
            "amount must be yuan: 0 or 1 to 16 digits without a leading zero, then at most"
            f" 2 decimals, no sign, got {_shown(text)}"
        )
    whole, decimals = match.group(1), match.group(2) or ""
    return int(whole) * 100 + int(decimals.ljust(2, "0"))


# -- the two forms ---------------------------------------------------------------------------------


def _parse_url(text: str) -> PointerQr:
    # urlsplit silently drops tabs and newlines; a URL in a QR code has none of them.
    if any(ch <= " " or ch == "\x7f" for ch in text):
        raise PointerMalformed("the URL contains white space or control characters")
    try:
        parts = urlsplit(text)
    except ValueError as exc:  # e.g. an unbalanced "[" in the host
        raise PointerMalformed(f"not a URL: {exc}") from None
    if not parts.netloc:
        raise PointerMalformed("the URL has no host")
    parameters = _parameters(parts)
    d_values = [value for key, value in parameters if key == "d"]
    named = [(key, value) for key, value in parameters if key in _ELEMENT_OF]
    if d_values and named:
        raise PointerMalformed(
            f"the URL has both a d parameter and named elements ({named[0][0]}): ambiguous"
        )
    if named:
        return _parse_named(named)
    if not d_values:
        raise PointerMalformed(
            "the URL has no d parameter and no named elements (invoice_code or billBatchCode,"
            " invoice_number or billNo, check_code or random)"
        )
    if len(d_values) > 1:
        raise PointerMalformed(f"the URL has {len(d_values)} d parameters")
    elements = d_values[0].split("_")
    if len(elements) == 5:
        code, number, check, amount, day = elements
        amount_fen: int | None = yuan_to_fen(amount)
    elif len(elements) == 4:
        code, number, check, day = elements
        amount_fen = None
    else:
        raise PointerMalformed(
            f"the d parameter has {len(elements)} elements joined by '_', 4 or 5 expected"
        )
    return PointerQr(code, number, check, amount_fen, _date(day), "url")


def _parse_named(named: list[tuple[str, str]]) -> PointerQr:
    values: dict[_Element, str] = {}
    for key, value in named:
        element = _ELEMENT_OF[key]
        if element in values:
            names = " or ".join(NAMED_PARAMETERS[element])
            raise PointerMalformed(f"the URL names the {_WORDS[element]} twice ({names})")
        values[element] = value
    for element in _REQUIRED:
        if element not in values:
            names = " or ".join(NAMED_PARAMETERS[element])
            raise PointerMalformed(f"the URL has no {_WORDS[element]} ({names})")
    amount = values.get("amount")
    day = values.get("date")
    return PointerQr(
        values["bill_code"],
        values["bill_number"],
        values["check_code"],
        None if amount is None else yuan_to_fen(amount),
        None if day is None else _date_or_moment(day),
        "named",
    )


_WORDS: Final[dict[_Element, str]] = {
    "bill_code": "bill code",
    "bill_number": "bill number",
    "check_code": "check code",
    "amount": "amount",
    "date": "date",
}


def _parameters(parts: SplitResult) -> list[tuple[str, str]]:
    """The decoded parameters of the query, or of the fragment's query when the query has
    none of a pointer's (a hash-routed page: ``#/check?d=...``)."""
    found = _pairs(parts.query)
    if not any(key == "d" or key in _ELEMENT_OF for key, _ in found) and "?" in parts.fragment:
        found = _pairs(parts.fragment.split("?", 1)[1])
    return found


def _pairs(query: str) -> list[tuple[str, str]]:
    """The parameters of a query string with their values decoded (keys as written)."""
    pairs = []
    for pair in query.split("&"):
        key, _, value = pair.partition("=")
        value = unquote(value)
        if "%" in value:  # encoded twice by the platform
            value = unquote(value)
        pairs.append((key, value))
    return pairs


def _tax_invoice_kind(type_code: str, fields: list[str]) -> TaxInvoiceKind:
    """A fully digital e-invoice has type 31 or 32, or no invoice code and a 20-digit number;
    a VAT invoice one of the VAT types; anything else is another tax invoice."""
    code, number = (fields[2], fields[3]) if len(fields) > 3 else ("?", "")
    if type_code in _DIGITAL_TYPES or (code == "" and len(number) == 20 and number.isdigit()):
        return "digital"
    return "vat" if type_code in _VAT_TYPES else "other"


def _date(text: str) -> date:
    match = _DATE.fullmatch(text)
    # The dashes go together: 20250301 or 2025-03-01, not 2025-0301.
    if match is None or len(text) not in (8, 10):
        raise PointerMalformed(f"date must be YYYYMMDD or YYYY-MM-DD, got {_shown(text)}")
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        raise PointerMalformed(f"{_shown(text)} is not a calendar date") from None


def _date_or_moment(text: str) -> date:
    """A date, or the interface's ``yyyyMMddHHmmssSSS`` (a real date and time) as its date."""
    match = _DATE_TIME_MS.fullmatch(text)
    if match is None:
        return _date(text)
    day = _date(match.group(1))
    try:
        time(int(match.group(2)), int(match.group(3)), int(match.group(4)))
    except ValueError:
        raise PointerMalformed(f"{_shown(text)} is not a real time of day") from None
    return day


def _check(name: str, value: object, pattern: re.Pattern[str], rule: str) -> None:
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise PointerMalformed(f"{name} must be {rule}, got {_shown(value)}")


def _shown(value: object) -> str:
    """A short repr for an error message: the input may be long or hostile."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
