"""The pointer QR of existing fiscal medical e-bills (财政电子票据): parsing and matching.

A fiscal e-bill's QR code carries no signature; it only names the bill (bill code 票据代码,
bill number 票据号码, check code 校验码, amount, issue date) so that a checker can look it up.
The verifier accepts it by checking those five elements against the ledger's record
(:func:`matches`). Two forms are read; the whole text is first stripped of surrounding white
space (scanners often append a newline) and refused above ``MAX_POINTER_CHARS`` characters.

**URL form** ``http(s)://<any host>/<any path>?...&d=<elements>&...``: the elements are in the
query parameter named exactly ``d`` (or, for hash-routed pages, in the query part of the
fragment, ``#/check?d=...``), joined by underscores::

    billcode_billnumber_checkcode_amount_date     e.g. 33082025_0000000001_c00001_64.50_20250301
    billcode_billnumber_checkcode_date            (platforms that leave the amount out)

The value is percent-decoded (twice when a platform encoded it twice: no valid value contains
``%``). Other parameters are ignored; a second ``d`` is refused as ambiguous.

**Comma-separated form**, in the manner of the tax invoice QR::

    01,type,code,number,amount,date,check[,more fields...]

``01`` is the format version (anything else is refused), ``type`` the bill type (1 to 8 letters
or digits, checked and not kept), then the elements; an empty check code is read as absent (as
on tax invoices of some types), while the amount and the date are required; fields after the
seventh are platform-specific and ignored.

**Elements**, the same in both forms (ASCII digits only, never other Unicode digits):

- bill code: exactly 8 digits;
- bill number: 8 to 10 digits, kept exactly as printed. The ledger's numbers have 10 digits;
  some issuers print fewer, and left-padding would guess how the issuer shortened them, so a
  shorter number is kept and :func:`matches` reports it as a ``bill_number`` mismatch;
- check code: 6 ASCII letters or digits, case kept and compared exactly;
- amount: yuan as ``0`` or digits without a leading zero (at most 16), then optionally ``.`` and
  1 or 2 decimals; converted to integer fen by string arithmetic, never through a float
  (``123.4`` is 12340 fen). A sign, a third decimal, ``.5``, ``5.`` and ``1,000`` are refused;
- date: ``YYYYMMDD`` or ``YYYY-MM-DD``, a real calendar date.

``parse_pointer`` raises :class:`PointerMalformed` for anything else, and no other exception
for any string. Parsing checks form only; :func:`matches` compares with the ledger. Test
vectors: ``tests/verifier/vectors/pointer/`` (each file says how its expected value follows).
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Final, Literal
from urllib.parse import unquote, urlsplit

from verifier.qr import QrError

MAX_POINTER_CHARS: Final = 2048
# Asia/Shanghai has been UTC+8 without daylight saving since 1991, before any e-bill, so a
# fixed offset gives the local date without depending on the host's tz database.
CHINA_STANDARD_TIME: Final = timezone(timedelta(hours=8), "Asia/Shanghai")

_BILL_CODE: Final = re.compile(r"[0-9]{8}")
_BILL_NUMBER: Final = re.compile(r"[0-9]{8,10}")
_CHECK_CODE: Final = re.compile(r"[0-9A-Za-z]{6}")
_BILL_TYPE: Final = re.compile(r"[0-9A-Za-z]{1,8}")
_AMOUNT: Final = re.compile(r"(0|[1-9][0-9]{0,15})(?:\.([0-9]{1,2}))?")
_DATE: Final = re.compile(r"([0-9]{4})-?([0-9]{2})-?([0-9]{2})")
_CSV_VERSION: Final = "01"
_CSV_MIN_FIELDS: Final = 7

PointerForm = Literal["url", "csv"]
PointerField = Literal["bill_code", "bill_number", "check_code", "amount_fen", "issued_on"]


class PointerMalformed(QrError):
    """Raised when a text is not a well-formed pointer QR of either form; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"malformed pointer QR: {reason}")


@dataclass(frozen=True)
class PointerQr:
    """The elements a pointer QR names; constructing one validates them (PointerMalformed)."""

    bill_code: str  # 票据代码, 8 digits
    bill_number: str  # 票据号码, 8 to 10 digits as printed
    check_code: str | None  # 校验码, 6 letters or digits; None when the code leaves it empty
    amount_fen: int | None  # None when the URL leaves the amount out
    issued_on: date | None  # the issue date as printed (China Standard Time)
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
        if self.form not in ("url", "csv"):
            raise PointerMalformed(f"form must be 'url' or 'csv', got {self.form!r}")


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
    """Whether ``text`` has the shape of a pointer QR: a URL with a ``d=`` or ``01,`` fields.

    A cheap routing test (no parsing); :func:`parse_pointer` may still refuse the text, but
    every text it accepts looks like a pointer.
    """
    if not isinstance(text, str) or len(text) > MAX_POINTER_CHARS:
        return False
    text = text.strip()
    if text[:8].lower().startswith(("http://", "https://")):
        return "d=" in text
    return text.startswith(_CSV_VERSION + ",")


def parse_pointer(text: str) -> PointerQr:
    """Parse a pointer QR text of either form (see the module docstring).

    Raises ``PointerMalformed`` for any text that is not one, never another exception. The
    caller still checks the elements against the ledger (:func:`matches`).
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
    if "," in text:
        return _parse_csv(text)
    raise PointerMalformed("neither an http(s) URL nor comma-separated fields")


def matches(pointer: PointerQr, record: BillRecord) -> list[Mismatch]:
    """The elements where ``pointer`` disagrees with ``record``; empty when it names it.

    Bill code, bill number and check code are always compared (a pointer without a check code
    mismatches: bill codes and numbers are sequential and guessable, the check code is what
    proves the holder saw the bill, compared in constant time); the amount and the date only
    when the pointer has them, the date against the record's issue time in China Standard
    Time. Raises ``ValueError`` for a record whose ``issued_at`` is naive.
    """
    if record.issued_at.utcoffset() is None:
        raise ValueError("the record's issued_at must be timezone-aware")
    found: list[Mismatch] = []
    if pointer.bill_code != record.bill_code:
        found.append(Mismatch("bill_code", record.bill_code, pointer.bill_code))
    if pointer.bill_number != record.bill_number:
        found.append(Mismatch("bill_number", record.bill_number, pointer.bill_number))
    if pointer.check_code is None or not hmac.compare_digest(
        pointer.check_code.encode(), record.check_code.encode()
    ):
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
    values = _parameter(parts.query, "d")
    if not values and "?" in parts.fragment:
        values = _parameter(parts.fragment.split("?", 1)[1], "d")
    if not values:
        raise PointerMalformed("the URL has no d parameter")
    if len(values) > 1:
        raise PointerMalformed(f"the URL has {len(values)} d parameters")
    elements = values[0].split("_")
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


def _parse_csv(text: str) -> PointerQr:
    fields = text.split(",")
    if len(fields) < _CSV_MIN_FIELDS:
        raise PointerMalformed(
            f"{len(fields)} comma-separated fields, at least {_CSV_MIN_FIELDS} expected"
        )
    version, bill_type, code, number, amount, day, check = fields[:_CSV_MIN_FIELDS]
    if version != _CSV_VERSION:
        raise PointerMalformed(f"format version must be {_CSV_VERSION!r}, got {_shown(version)}")
    _check("bill type", bill_type, _BILL_TYPE, "1 to 8 letters or digits")
    return PointerQr(code, number, check or None, yuan_to_fen(amount), _date(day), "csv")


def _parameter(query: str, name: str) -> list[str]:
    """The decoded values of the parameters called exactly ``name`` in a query string."""
    values = []
    for pair in query.split("&"):
        key, _, value = pair.partition("=")
        if key == name:
            value = unquote(value)
            if "%" in value:  # encoded twice by the platform
                value = unquote(value)
            values.append(value)
    return values


def _date(text: str) -> date:
    match = _DATE.fullmatch(text)
    # The dashes go together: 20250301 or 2025-03-01, not 2025-0301.
    if match is None or len(text) not in (8, 10):
        raise PointerMalformed(f"date must be YYYYMMDD or YYYY-MM-DD, got {_shown(text)}")
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        raise PointerMalformed(f"{_shown(text)} is not a calendar date") from None


def _check(name: str, value: object, pattern: re.Pattern[str], rule: str) -> None:
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise PointerMalformed(f"{name} must be {rule}, got {_shown(value)}")


def _shown(value: object) -> str:
    """A short repr for an error message: the input may be long or hostile."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
