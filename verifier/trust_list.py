"""The authority's signed trust list: every hospital's keys, for offline verification.

The authority (医保局) exports the hospital registry of the ledger as one JSON document, signed
with its secp256k1 key, so that a verifier with no network checks an invoice signature against
it (``docs/qr-format.md`` §4, step 5). Specified in ``docs/trust-list.md``:

- ``{"body": BODY, "signature": "0x" + 65 bytes hex, "signer": address}``;
- the signed bytes are the canonical JSON of BODY (sorted keys, no spaces, UTF-8, no floats),
  prefixed with the tag ``zeroclaim-trust-list/1`` and a newline;
- the signature is EIP-191 ``personal_sign`` over those bytes:
  ``keccak256("\\x19Ethereum Signed Message:\\n" + decimal length + message)``, made and
  checked with ``verifier.canonical.sign_digest`` / ``recover_signer`` (low s, v 27 or 28).
  personal_sign lets the authority sign with any Ethereum wallet or HSM, and its ``0x19``
  prefix keeps the signed bytes from ever being a transaction or an EIP-712 invoice digest.

**The anchor of trust is the authority address the caller passes to** :func:`load_trust_list`,
pinned in the verifier's configuration. The document's own ``signer`` field is a hint and is
never trusted: a list signed by anyone else is refused.

Loading checks, in order: structure of the wrapper, signature by the expected authority,
structure of the body, expiry. The caller must still check that ``TrustList.domain`` is the
ledger it trusts, and should refuse a list whose ``sequence`` is lower than one it has already
accepted (a replayed old list may still name a key revoked since).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from chain.model import (
    Hospital,
    HospitalKey,
    HospitalLevel,
    KeyRejection,
    hospital_code_bytes,
    judge_key,
)
from verifier.canonical import Domain, SignatureInvalid, recover_signer, sign_digest
from verifier.errors import VerifierError

FORMAT_VERSION: Final = 1
SIGNING_TAG: Final = b"zeroclaim-trust-list/1\n"
MAX_JSON_INTEGER: Final = 2**53 - 1  # exact in every JSON implementation (RFC 8785)
MAX_NAME_CHARS: Final = 200
MAX_DEPTH: Final = 16  # a trust list nests 6 levels; deeper JSON can overflow the C stack

_ADDRESS: Final = re.compile(r"0x[0-9a-fA-F]{40}")
_SIGNATURE: Final = re.compile(r"0x[0-9a-f]{130}")
_JSON_STRING: Final = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_BRACKETS: Final = re.compile(r"[\[\]{}]")
_TIME: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_WRAPPER_KEYS: Final = frozenset({"body", "signature", "signer"})
_BODY_KEYS: Final = frozenset(
    {"version", "sequence", "issued_at", "expires_at", "domain", "hospitals"}
)
_DOMAIN_KEYS: Final = frozenset({"chain_id", "contract"})
_HOSPITAL_KEYS: Final = frozenset({"code", "level", "name", "keys"})
_KEY_KEYS: Final = frozenset({"index", "signer", "valid_from", "revoked_at"})
#: Present only on a key whose revocation the ledger recorded (a compromise, not a rotation).
_KEY_OPTIONAL: Final = frozenset({"revoked_log_size"})


class TrustListError(VerifierError):
    """Root of the errors of loading a trust list."""


class TrustListMalformed(TrustListError):
    """Raised when a document is not a well-formed trust list: bad JSON, a missing or unknown
    field, a value of the wrong type or form, or a body that cannot be canonicalised."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"malformed trust list: {reason}")


class TrustListSignatureInvalid(TrustListError):
    """Raised when the signature is not the expected authority's: ``actual`` is the address it
    recovers, or None when it recovers none (high s, bad v, not a point)."""

    def __init__(self, expected: str, actual: str | None) -> None:
        self.expected = expected
        self.actual = actual
        got = actual if actual is not None else "no key"
        super().__init__(f"trust list must be signed by {expected}, the signature recovers {got}")


class TrustListExpired(TrustListError):
    """Raised when a trust list is loaded at or after its ``expires_at``."""

    def __init__(self, expires_at: datetime, now: datetime) -> None:
        self.expires_at = expires_at
        self.now = now
        super().__init__(f"trust list expired at {expires_at.isoformat()}, it is {now.isoformat()}")


@dataclass(frozen=True)
class TrustedHospital:
    """A registered hospital as the trust list names it, with every key it ever had."""

    code: str
    level: HospitalLevel
    name: str
    keys: tuple[HospitalKey, ...]

    @classmethod
    def of(cls, hospital: Hospital, name: str) -> TrustedHospital:
        """The ledger's registry entry of a hospital, with its name from the database."""
        return cls(hospital.code, hospital.level, name, hospital.keys)


@dataclass(frozen=True)
class TrustList:
    """A loaded, verified trust list: the body's fields, typed."""

    sequence: int
    issued_at: datetime
    expires_at: datetime
    domain: Domain
    hospitals: tuple[TrustedHospital, ...]
    _by_code: dict[str, TrustedHospital] = field(init=False, repr=False, compare=False)
    _registry: dict[str, Hospital] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_code", {h.code: h for h in self.hospitals})
        registry = {h.code: Hospital(h.code, h.level, h.keys) for h in self.hospitals}
        object.__setattr__(self, "_registry", registry)

    def hospital(self, code: str) -> TrustedHospital | None:
        return self._by_code.get(code)

    def judge(
        self, hospital: str, signer: str, moment: datetime, leaf_index: int | None = None
    ) -> KeyRejection | None:
        """Why a signature by ``signer`` for ``hospital`` made at ``moment`` is not valid, or
        None when it is, by the keys this list names: ``chain.model.judge_key``, the judge
        the service's registry uses too (addresses in any letter case; with ``leaf_index``,
        the invoice's index in the log, a key whose revocation was recorded at a log size at
        or below it refuses the invoice whatever its issue time).

        The list's own expiry is not consulted here: it bounds when the list may be used, not
        when the invoice was signed. Raises ``ValueError`` for a naive ``moment``.
        """
        return judge_key(self._registry.get(hospital), signer, moment, leaf_index)

    def revoked_log_size(self, hospital: str, signer: str) -> int | None:
        """The smallest log size at which a revocation of a key of ``hospital`` with this
        address was recorded, or None: invoices of the key at that leaf index or beyond are
        refused (:meth:`judge` with ``leaf_index``)."""
        registered = self._registry.get(hospital)
        return None if registered is None else registered.revoked_log_size(signer)

    def key_valid_at(self, hospital: str, signer: str, moment: datetime) -> bool:
        """Whether ``signer`` is a key of ``hospital`` valid at ``moment`` (see :meth:`judge`)."""
        return self.judge(hospital, signer, moment) is None


# -- the authority's side ------------------------------------------------------------------------


def build_trust_list(
    hospitals: Iterable[TrustedHospital],
    chain_id: int,
    contract: str,
    sequence: int,
    issued_at: datetime,
    expires_at: datetime,
) -> dict[str, Any]:
    """The body of a trust list, hospitals sorted by code and keys by index.

    Times are written in UTC to the second, the ledger's resolution (fractions are dropped).
    Raises ``ValueError`` for inputs that would make a malformed list (naive times, an address
    that is not one, duplicate hospital codes, ``expires_at`` not after ``issued_at``, ...).
    """
    body: dict[str, Any] = {
        "version": FORMAT_VERSION,
        "sequence": sequence,
        "issued_at": _format_time(issued_at, "issued_at"),
        "expires_at": _format_time(expires_at, "expires_at"),
        "domain": {"chain_id": chain_id, "contract": _checksummed(contract, "contract")},
        "hospitals": [
            {
                "code": h.code,
                "level": HospitalLevel(h.level).name,
                "name": h.name,
                "keys": [_key_body(key) for key in sorted(h.keys, key=lambda k: k.index)],
            }
            for h in sorted(hospitals, key=lambda h: h.code)
        ],
    }
    try:
        _parse_body(body)
    except TrustListMalformed as exc:
        raise ValueError(exc.reason) from None
    return body


def _key_body(key: HospitalKey) -> dict[str, Any]:
    body: dict[str, Any] = {
        "index": key.index,
        "signer": _checksummed(key.signer, "signer"),
        "valid_from": _format_time(key.valid_from, "valid_from"),
        "revoked_at": None
        if key.revoked_at is None
        else _format_time(key.revoked_at, "revoked_at"),
    }
    if key.revoked_log_size is not None:
        body["revoked_log_size"] = key.revoked_log_size
    return body


def sign_trust_list(body: dict[str, Any], authority_private_key: bytes) -> dict[str, Any]:
    """The signed document ``{"body", "signature", "signer"}`` of a body.

    The body is checked first (``ValueError`` when malformed) and copied through its canonical
    JSON, so the document holds exactly what was signed.
    """
    try:
        _parse_body(body)
        canonical = canonical_body(body)
    except TrustListMalformed as exc:
        raise ValueError(exc.reason) from None
    digest = _digest(canonical)
    signature = sign_digest(authority_private_key, digest)
    return {
        "body": json.loads(canonical),
        "signature": "0x" + signature.hex(),
        "signer": recover_signer(digest, signature),
    }


def dump_trust_list(document: dict[str, Any]) -> str:
    """A signed document as readable JSON (indented, UTF-8 text), as published."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# -- the verifier's side -------------------------------------------------------------------------


def load_trust_list(
    document: dict[str, Any] | str | bytes, authority: str, now: datetime
) -> TrustList:
    """Verify and parse a signed trust list.

    ``authority`` is the address the caller trusts (from its configuration, never from the
    document). Raises ``TrustListMalformed``, ``TrustListSignatureInvalid(expected, actual)``
    or ``TrustListExpired(expires_at, now)``; ``ValueError`` for an ``authority`` that is not
    an address or a naive ``now``. The caller still checks ``domain`` and ``sequence``.
    """
    expected = _checksummed(authority, "authority")
    _require_aware(now, "now")
    wrapper = _object(_decode(document), "the document", _WRAPPER_KEYS)
    body, signature_hex, claimed = wrapper["body"], wrapper["signature"], wrapper["signer"]
    if not isinstance(body, dict):
        raise TrustListMalformed("body must be an object")
    if not isinstance(signature_hex, str) or not _SIGNATURE.fullmatch(signature_hex):
        raise TrustListMalformed("signature must be 0x and 65 bytes in lower-case hex")
    if not isinstance(claimed, str) or not _ADDRESS.fullmatch(claimed):
        raise TrustListMalformed(f"signer must be an address, got {claimed!r}")
    digest = _digest(canonical_body(body))
    try:
        actual = recover_signer(digest, bytes.fromhex(signature_hex[2:]))
    except SignatureInvalid:
        raise TrustListSignatureInvalid(expected, None) from None
    if actual != expected:
        raise TrustListSignatureInvalid(expected, actual)
    if to_checksum_address(claimed) != actual:
        raise TrustListMalformed(f"signer names {claimed}, the signature is by {actual}")
    trust = _parse_body(body)
    if now >= trust.expires_at:
        raise TrustListExpired(trust.expires_at, now)
    return trust


def canonical_body(body: dict[str, Any]) -> bytes:
    """Sorted keys, no white space, UTF-8, no floats; raises TrustListMalformed otherwise."""
    _refuse_floats(body)
    try:
        text = json.dumps(
            body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
        return text.encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:  # non-JSON values, lone surrogates
        raise TrustListMalformed(f"the body has no canonical JSON: {exc}") from None


def signing_digest(body: dict[str, Any]) -> bytes:
    """The EIP-191 personal_sign digest of the tagged canonical body: what the authority signs."""
    return _digest(canonical_body(body))


def _digest(canonical: bytes) -> bytes:
    message = SIGNING_TAG + canonical
    return keccak(b"\x19Ethereum Signed Message:\n" + str(len(message)).encode() + message)


# -- parsing -------------------------------------------------------------------------------------


def _decode(document: object) -> object:
    if isinstance(document, dict):
        return document
    if isinstance(document, bytes):
        try:
            document = document.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TrustListMalformed(f"not UTF-8: {exc}") from None
    if not isinstance(document, str):
        raise TrustListMalformed(f"a trust list is JSON text or a dict, got {type(document)}")
    _check_depth(document)
    try:
        return json.loads(document, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise TrustListMalformed(f"not JSON: {exc}") from None


def _check_depth(text: str) -> None:
    """Refuse deep nesting before json.loads, whose recursion can crash the interpreter."""
    depth = 0
    for bracket in _BRACKETS.findall(_JSON_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        if depth > MAX_DEPTH:
            raise TrustListMalformed(f"JSON nested more than {MAX_DEPTH} levels")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        # Another parser might keep the other value: refuse what two readers read differently.
        raise ValueError("duplicate key in a JSON object")
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _refuse_floats(value: object, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise TrustListMalformed(f"JSON nested more than {MAX_DEPTH} levels")
    if isinstance(value, float):
        raise TrustListMalformed(f"numbers must be integers, got {value!r}")
    if isinstance(value, dict):
        for item in value.values():
            _refuse_floats(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _refuse_floats(item, depth + 1)


def _parse_body(body: object) -> TrustList:
    fields = _object(body, "body", _BODY_KEYS)
    if _integer(fields["version"], "version", 0) != FORMAT_VERSION:
        raise TrustListMalformed(f"version must be {FORMAT_VERSION}, got {fields['version']!r}")
    issued_at = _parse_time(fields["issued_at"], "issued_at")
    expires_at = _parse_time(fields["expires_at"], "expires_at")
    if expires_at <= issued_at:
        raise TrustListMalformed("expires_at must be after issued_at")
    domain = _object(fields["domain"], "domain", _DOMAIN_KEYS)
    hospitals = fields["hospitals"]
    if not isinstance(hospitals, list):
        raise TrustListMalformed("hospitals must be a list")
    parsed = tuple(_parse_hospital(h) for h in hospitals)
    if len({h.code for h in parsed}) != len(parsed):
        raise TrustListMalformed("hospital codes must be unique")
    return TrustList(
        sequence=_integer(fields["sequence"], "sequence", 0),
        issued_at=issued_at,
        expires_at=expires_at,
        domain=Domain(
            _integer(domain["chain_id"], "chain_id", 1),
            _strict_address(domain["contract"], "contract"),
        ),
        hospitals=parsed,
    )


def _parse_hospital(value: object) -> TrustedHospital:
    fields = _object(value, "a hospital", _HOSPITAL_KEYS)
    code = fields["code"]
    try:
        hospital_code_bytes(code if isinstance(code, str) else "")
    except ValueError:
        raise TrustListMalformed(
            f"hospital code must be 1 to 32 letters or digits, got {code!r}"
        ) from None
    level, name, keys = fields["level"], fields["name"], fields["keys"]
    if not isinstance(level, str) or level not in HospitalLevel.__members__:
        names = ", ".join(HospitalLevel.__members__)
        raise TrustListMalformed(f"level of {code} must be one of {names}, got {level!r}")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_CHARS:
        raise TrustListMalformed(f"name of {code} must be 1 to {MAX_NAME_CHARS} characters")
    if not isinstance(keys, list):
        raise TrustListMalformed(f"keys of {code} must be a list")
    parsed = tuple(_parse_key(key, code) for key in keys)
    if len({key.index for key in parsed}) != len(parsed):
        raise TrustListMalformed(f"key indexes of {code} must be unique")
    return TrustedHospital(code, HospitalLevel[level], name, parsed)


def _parse_key(value: object, hospital: str) -> HospitalKey:
    fields = _object(value, f"a key of {hospital}", _KEY_KEYS, _KEY_OPTIONAL)
    valid_from = _parse_time(fields["valid_from"], "valid_from")
    revoked = fields["revoked_at"]
    revoked_at = None if revoked is None else _parse_time(revoked, "revoked_at")
    if revoked_at is not None and revoked_at < valid_from:
        raise TrustListMalformed(f"a key of {hospital} is revoked before it is valid")
    log_size = None
    if "revoked_log_size" in fields:
        log_size = _integer(fields["revoked_log_size"], "revoked_log_size", 0)
        if revoked_at is None:
            raise TrustListMalformed(f"a key of {hospital} has a revoked_log_size, no revoked_at")
    return HospitalKey(
        index=_integer(fields["index"], "index", 0),
        signer=_strict_address(fields["signer"], "signer"),
        valid_from=valid_from,
        revoked_at=revoked_at,
        revoked_log_size=log_size,
    )


def _object(
    value: object, where: str, keys: frozenset[str], optional: frozenset[str] = frozenset()
) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TrustListMalformed(f"{where} must be an object")
    present = set(value)
    if not keys <= present <= keys | optional:
        missing = ", ".join(sorted(keys - present)) or "none"
        extra = ", ".join(sorted(map(str, present - keys - optional))) or "none"
        raise TrustListMalformed(f"{where}: missing fields {missing}; unknown fields {extra}")
    return value


def _integer(value: object, name: str, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TrustListMalformed(f"{name} must be an integer, got {value!r}")
    if not least <= value <= MAX_JSON_INTEGER:
        raise TrustListMalformed(f"{name} must be in [{least}, 2**53 - 1], got {value}")
    return value


def _strict_address(value: object, name: str) -> str:
    if (
        not isinstance(value, str)
        or not _ADDRESS.fullmatch(value)
        or to_checksum_address(value) != value
    ):
        raise TrustListMalformed(f"{name} must be a checksummed address, got {value!r}")
    return value


def _checksummed(value: str, name: str) -> str:
    if not isinstance(value, str) or not _ADDRESS.fullmatch(value):
        raise ValueError(f"{name} must be an address (0x and 40 hex digits), got {value!r}")
    return to_checksum_address(value)


def _format_time(moment: datetime, name: str) -> str:
    _require_aware(moment, name)
    t = moment.astimezone(UTC)
    # Not strftime: its %Y does not zero-pad years below 1000 on every platform.
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}Z"


def _parse_time(value: object, name: str) -> datetime:
    if not isinstance(value, str) or not _TIME.fullmatch(value):
        raise TrustListMalformed(f"{name} must be YYYY-MM-DDTHH:MM:SSZ (UTC), got {value!r}")
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise TrustListMalformed(f"{name} is not a valid time: {value!r}") from None


def _require_aware(moment: datetime, name: str) -> None:
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
