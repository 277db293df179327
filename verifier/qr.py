"""The self-verifying QR payload of an invoice: codec and QR image rendering.

Text form (version 1, specified in ``docs/qr-format.md``): ``ZC1:`` then the RFC 9285 base45
of one canonical CBOR array, positional for compactness::

    [1, chain_id, contract, bill_code, bill_number, check_code, hospital, issued_at, total,
     detail_root, patient_commitment, signature]

The payload carries exactly the fields of the record hash (``verifier.canonical.SignedFields``)
plus the EIP-712 domain and the hospital's signature, so it verifies offline against a trust
list of hospital keys. Every character is in the QR alphanumeric set, the densest mode that
scanners read as text, in the family of the EU Digital COVID Certificate (``HC1:``). The bytes
are not compressed: hashes and a signature do not compress.

Decoding is strict: exactly one text encodes a given payload, and every other input is refused
with a ``QrError`` subclass, never another exception. Decoding checks structure only; the caller
still checks the signature (:meth:`QrPayload.signer`), the domain and the trust list.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any, Final

import base45
import cbor2
from eth_utils.address import to_checksum_address

from verifier.canonical import (
    Domain,
    SignedFields,
    invoice_id,
    recover_signer,
    signing_digest,
)
from verifier.errors import VerifierError
from verifier.invoice import Invoice

PREFIX: Final = "ZC1:"
VERSION: Final = 1
MAX_PAYLOAD_CHARS: Final = 1024
# QR alphanumeric mode: digits, upper-case letters, space and $%*+-./: (ISO/IEC 18004, 7.4.4).
# It is exactly the base45 alphabet of RFC 9285; the prefix "ZC1:" is drawn from it too.
QR_ALPHANUMERIC: Final = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")

_FIELDS: Final = 12
_UINT64_MAX: Final = 2**64 - 1
_BILL_CODE = re.compile(r"[0-9]{8}")
_BILL_NUMBER = re.compile(r"[0-9]{10}")
_CHECK_CODE = re.compile(r"[0-9A-Za-z]{6}")
_HOSPITAL = re.compile(r"[0-9A-Za-z]{1,32}")
_OTHER_PREFIX = re.compile(r"ZC([1-9][0-9]{0,8}):")


class QrError(VerifierError):
    """Root of the errors of the QR payload codec and of QR image reading."""


class QrTooLong(QrError):
    """Raised when a payload text is longer than the limit, before anything is decoded."""

    def __init__(self, length: int, limit: int) -> None:
        self.length = length
        self.limit = limit
        super().__init__(f"QR payload is {length} characters, at most {limit} are accepted")


class QrWrongPrefix(QrError):
    """Raised when a payload text does not start with ``ZC1:`` (nor any other ``ZC<n>:``)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        super().__init__(f"QR payload must start with {PREFIX!r}, got {prefix!r}")


class QrUnsupportedVersion(QrError):
    """Raised when a payload is of a version this codec does not read (prefix or CBOR)."""

    def __init__(self, version: int) -> None:
        self.version = version
        super().__init__(f"QR payload version {version} is not supported (only {VERSION})")


class QrMalformed(QrError):
    """Raised when a payload is not a well-formed version 1 payload: bad base45, bad or
    non-canonical CBOR, wrong number of fields, or a field of the wrong type, length or range."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"malformed QR payload: {reason}")


class QrImageUnreadable(QrError):
    """Raised when image bytes cannot be opened as an image."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"cannot read the QR image: {reason}")


@dataclass(frozen=True)
class QrPayload:
    """The decoded QR payload; constructing one validates every field (raises QrMalformed)."""

    version: int
    chain_id: int
    contract: str  # checksummed address of the ledger contract
    bill_code: str  # 票据代码, 8 digits
    bill_number: str  # 票据号码, 10 digits
    check_code: str  # 校验码, 6 letters or digits
    hospital: str  # hospital code, 1 to 32 letters or digits
    issued_at: int  # seconds since the epoch (UTC)
    total: int  # fen
    detail_root: bytes  # 32 bytes
    patient_commitment: bytes  # 32 bytes
    signature: bytes  # 65 bytes r ‖ s ‖ v

    def __post_init__(self) -> None:
        if self.version != VERSION:
            raise QrUnsupportedVersion(self.version)
        _check_uint("chain_id", self.chain_id, 1, _UINT64_MAX)
        if (
            not isinstance(self.contract, str)
            or not re.fullmatch(r"0x[0-9a-fA-F]{40}", self.contract)
            or to_checksum_address(self.contract) != self.contract
        ):
            raise QrMalformed(f"contract must be a checksummed address, got {self.contract!r}")
        _check_text("bill_code", self.bill_code, _BILL_CODE, "8 digits")
        _check_text("bill_number", self.bill_number, _BILL_NUMBER, "10 digits")
        _check_text("check_code", self.check_code, _CHECK_CODE, "6 letters or digits")
        _check_text("hospital", self.hospital, _HOSPITAL, "1 to 32 letters or digits")
        _check_uint("issued_at", self.issued_at, 0, _UINT64_MAX)
        _check_uint("total", self.total, 0, _UINT64_MAX)
        _check_bytes("detail_root", self.detail_root, 32)
        _check_bytes("patient_commitment", self.patient_commitment, 32)
        _check_bytes("signature", self.signature, 65)

    def signed_fields(self) -> SignedFields:
        """The signed record; ``invoice_id`` is recomputed from the hospital, bill code and
        number."""
        return SignedFields(
            invoice_id(self.hospital, self.bill_code, self.bill_number),
            self.check_code,
            self.hospital,
            self.issued_at,
            self.total,
            self.patient_commitment,
            self.detail_root,
        )

    def domain(self) -> Domain:
        """The EIP-712 domain the payload claims; the caller checks it is the trusted ledger."""
        return Domain(self.chain_id, self.contract)

    def digest(self, domain: Domain | None = None) -> bytes:
        """The EIP-712 digest the hospital signed: in the payload's own domain by default, or
        in ``domain`` (a verifier's pinned ledger)."""
        return signing_digest(domain or self.domain(), self.signed_fields().record_hash())

    def signer(self, domain: Domain | None = None) -> str:
        """The checksummed address that signed the payload (domain as in :meth:`digest`).

        Raises ``verifier.canonical.SignatureInvalid`` for a malformed or high-s signature. The
        caller still checks the address against the trust list at ``issued_at``.
        """
        return recover_signer(self.digest(domain), self.signature)


def payload_for(
    invoice: Invoice, domain: Domain, signature: bytes, detail_root: bytes | None = None
) -> QrPayload:
    """The QR payload of ``invoice`` signed in ``domain``; ``detail_root`` if already known."""
    fields = SignedFields.of(invoice, detail_root)
    return QrPayload(
        version=VERSION,
        chain_id=domain.chain_id,
        contract=to_checksum_address(domain.contract),
        bill_code=invoice.bill_code,
        bill_number=invoice.bill_number,
        check_code=fields.check_code,
        hospital=fields.hospital,
        issued_at=fields.issued_at,
        total=fields.total,
        detail_root=fields.detail_root,
        patient_commitment=fields.patient_commitment,
        signature=signature,
    )


def cbor_payload(p: QrPayload) -> bytes:
    """The canonical CBOR array of a payload (the bytes under the base45)."""
    return bytes(cbor2.dumps(_array(p), canonical=True))


def encode_payload(p: QrPayload) -> str:
    """The text of the QR code: ``ZC1:`` + base45(canonical CBOR)."""
    return PREFIX + bytes(base45.b45encode(cbor_payload(p))).decode("ascii")


def decode_payload(text: str) -> QrPayload:
    """Parses a QR payload text; the exact inverse of :func:`encode_payload`.

    Raises ``QrTooLong``, ``QrWrongPrefix``, ``QrUnsupportedVersion`` or ``QrMalformed`` and no
    other exception. Checks structure only: the caller verifies the signer and the domain.
    """
    if not isinstance(text, str):
        raise QrMalformed(f"a payload is text, got {type(text).__name__}")
    if len(text) > MAX_PAYLOAD_CHARS:
        raise QrTooLong(len(text), MAX_PAYLOAD_CHARS)
    if not text.startswith(PREFIX):
        other = _OTHER_PREFIX.match(text)
        if other is not None:
            raise QrUnsupportedVersion(int(other.group(1)))
        raise QrWrongPrefix(text[: len(PREFIX)])
    body = text[len(PREFIX) :]
    raw = _base45(body)
    try:
        items = cbor2.loads(raw)
    except Exception as exc:  # cbor2 raises several types (and RecursionError) on bad input
        raise QrMalformed(f"not CBOR: {type(exc).__name__}: {exc}") from None
    if not isinstance(items, list) or not items:
        raise QrMalformed(f"CBOR must be a non-empty array, got {type(items).__name__}")
    version = items[0]
    if type(version) is not int:
        raise QrMalformed(f"version must be an integer, got {type(version).__name__}")
    if version != VERSION:
        raise QrUnsupportedVersion(version)
    if len(items) != _FIELDS:
        raise QrMalformed(f"version {VERSION} has {_FIELDS} fields, got {len(items)}")
    (_, chain_id, contract, bill_code, bill_number, check_code, hospital, issued_at, total,
     root, commitment, signature) = items  # fmt: skip
    bill_code_int = _int_field("bill_code", bill_code, 99_999_999)
    bill_number_int = _int_field("bill_number", bill_number, 9_999_999_999)
    contract_bytes = _bytes_field("contract", contract, 20)
    payload = QrPayload(
        version=version,
        chain_id=_int_field("chain_id", chain_id, _UINT64_MAX),
        contract=to_checksum_address(contract_bytes),
        bill_code=f"{bill_code_int:08d}",
        bill_number=f"{bill_number_int:010d}",
        check_code=_text_field("check_code", check_code),
        hospital=_text_field("hospital", hospital),
        issued_at=_int_field("issued_at", issued_at, _UINT64_MAX),
        total=_int_field("total", total, _UINT64_MAX),
        detail_root=_bytes_field("detail_root", root, 32),
        patient_commitment=_bytes_field("patient_commitment", commitment, 32),
        signature=_bytes_field("signature", signature, 65),
    )
    # Shortest integers, definite lengths, no tags and no trailing bytes: one encoding only.
    if cbor_payload(payload) != raw:
        raise QrMalformed("CBOR is not in canonical form")
    return payload


def is_alphanumeric(text: str) -> bool:
    """Whether every character of ``text`` fits QR alphanumeric mode."""
    return all(ch in QR_ALPHANUMERIC for ch in text)


def qr_png(text: str, scale: int = 4, border: int = 4) -> bytes:
    """A PNG of the QR code of ``text`` at error level M (or higher if it fits the same size)."""
    out = io.BytesIO()
    _make_qr(text).save(out, kind="png", scale=scale, border=border)
    return out.getvalue()


def qr_svg(text: str, scale: int = 4, border: int = 4) -> str:
    """A standalone SVG document of the QR code of ``text`` (see :func:`qr_png`)."""
    out = io.BytesIO()
    _make_qr(text).save(out, kind="svg", scale=scale, border=border, xmldecl=False)
    return out.getvalue().decode("utf-8")


def decode_qr_image(image_bytes: bytes) -> list[str]:
    """The texts of every QR code found in an image (PNG, JPEG, ...), in reading order.

    Raises ``QrImageUnreadable`` if the bytes are not an image; an image without a QR code gives
    an empty list. pyzbar returns bytes: they are read as UTF-8, else as Latin-1.
    """
    from PIL import Image, UnidentifiedImageError
    from pyzbar.pyzbar import ZBarSymbol
    from pyzbar.pyzbar import decode as zbar_decode

    try:
        with Image.open(io.BytesIO(image_bytes)) as image:
            gray = image.convert("L")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise QrImageUnreadable(str(exc)) from None
    texts = []
    for symbol in zbar_decode(gray, symbols=[ZBarSymbol.QRCODE]):
        data: bytes = symbol.data
        try:
            texts.append(data.decode("utf-8"))
        except UnicodeDecodeError:
            texts.append(data.decode("latin-1"))
    return texts


def _make_qr(text: str) -> Any:
    import segno

    mode = "alphanumeric" if text and is_alphanumeric(text) else None
    return segno.make_qr(text, error="m", mode=mode)


def _array(p: QrPayload) -> list[object]:
    return [
        p.version,
        p.chain_id,
        bytes.fromhex(p.contract[2:]),
        int(p.bill_code),
        int(p.bill_number),
        p.check_code,
        p.hospital,
        p.issued_at,
        p.total,
        p.detail_root,
        p.patient_commitment,
        p.signature,
    ]


def _base45(body: str) -> bytes:
    try:
        raw = bytes(base45.b45decode(body))
    except (ValueError, TypeError, UnicodeError) as exc:
        raise QrMalformed(f"not base45: {exc}") from None
    # The library forgives a trailing newline; a canonical text has none.
    if base45.b45encode(raw).decode("ascii") != body:
        raise QrMalformed("base45 is not in canonical form")
    return raw


def _int_field(name: str, value: object, maximum: int) -> int:
    if type(value) is not int:  # bool is an int in Python, a simple value in CBOR
        raise QrMalformed(f"{name} must be an integer, got {type(value).__name__}")
    if not 0 <= value <= maximum:
        raise QrMalformed(f"{name} must be in [0, {maximum}], got {value}")
    return value


def _bytes_field(name: str, value: object, length: int) -> bytes:
    if type(value) is not bytes:
        raise QrMalformed(f"{name} must be a byte string, got {type(value).__name__}")
    if len(value) != length:
        raise QrMalformed(f"{name} must be {length} bytes, got {len(value)}")
    return value


def _text_field(name: str, value: object) -> str:
    if type(value) is not str:
        raise QrMalformed(f"{name} must be a text string, got {type(value).__name__}")
    return value


def _check_uint(name: str, value: object, minimum: int, maximum: int) -> None:
    if type(value) is not int or not minimum <= value <= maximum:
        raise QrMalformed(f"{name} must be an integer in [{minimum}, {maximum}], got {value!r}")


def _check_text(name: str, value: object, pattern: re.Pattern[str], what: str) -> None:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise QrMalformed(f"{name} must be {what}, got {value!r}")


def _check_bytes(name: str, value: object, length: int) -> None:
    if not isinstance(value, bytes) or len(value) != length:
        raise QrMalformed(f"{name} must be {length} bytes, got {value!r}")
