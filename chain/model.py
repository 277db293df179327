"""Plain data of the ledger: hospitals and the one judge of their keys, checkpoints, invoice
leaves and the ledger's state of an invoice."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"

#: The EIP-712 domain of every zeroclaim signature (the contract's constructor sets the same
#: name and version): invoices (``verifier.canonical``) and reversals (``chain.ledger``).
DOMAIN_NAME = "zeroclaim"
DOMAIN_VERSION = "1"
EIP712_DOMAIN_TYPE = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
_HOSPITAL_CODE = re.compile(r"^[0-9A-Za-z]{1,32}$")


class HospitalLevel(enum.IntEnum):
    """Hospital grade; reimbursement ratios depend on it. Values are the contract's."""

    TOWNSHIP = 0  # 乡镇卫生院 / 社区卫生服务中心
    PRIMARY = 1  # 一级
    SECONDARY = 2  # 二级
    TERTIARY = 3  # 三级


class Role(enum.StrEnum):
    """Contract roles by the name of their constant."""

    ADMIN = "DEFAULT_ADMIN_ROLE"
    HOSPITAL = "HOSPITAL_ROLE"
    SEQUENCER = "SEQUENCER_ROLE"
    PAYER = "PAYER_ROLE"
    AUDITOR = "AUDITOR_ROLE"


def hospital_code_bytes(code: str) -> bytes:
    """The bytes32 form of a hospital code: its ASCII, left-aligned, zero-padded."""
    if not _HOSPITAL_CODE.fullmatch(code):
        raise ValueError(f"hospital code must be 1 to 32 letters or digits, got {code!r}")
    return code.encode("ascii").ljust(32, b"\x00")


def hospital_code_str(raw: bytes) -> str:
    """Inverse of :func:`hospital_code_bytes`."""
    return bytes(raw).rstrip(b"\x00").decode("ascii")


def to_timestamp(moment: datetime) -> int:
    """Seconds since the epoch of a timezone-aware datetime."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: a time on the ledger must carry its timezone")
    return int(moment.timestamp())


def from_timestamp(seconds: int) -> datetime:
    """A timezone-aware UTC datetime."""
    return datetime.fromtimestamp(seconds, tz=UTC)


class KeyRejection(enum.StrEnum):
    """Why :func:`judge_key` refuses a (hospital, signer, moment); stable codes."""

    UNKNOWN_HOSPITAL = "unknown_hospital"
    UNKNOWN_KEY = "unknown_key"
    KEY_NOT_YET_VALID = "key_not_yet_valid"
    KEY_REVOKED = "key_revoked"
    KEY_REVOKED_BEFORE_ANCHORING = "key_revoked_before_anchoring"


def same_address(a: str, b: str) -> bool:
    """Whether two hex addresses name one account. The contract compares 20-byte values, so
    letter case (the EIP-55 checksum, or its absence) is no part of an address's identity."""
    return a.lower() == b.lower()


@dataclass(frozen=True)
class HospitalKey:
    """One signing key of a hospital, valid in [valid_from, revoked_at).

    ``revoked_log_size`` is None unless the key was revoked (a compromise, not a rotation);
    then it is the log size anchored when the revocation was recorded: an invoice of this key
    at that leaf index or beyond was first anchored after it and is refused whatever its issue
    time (a thief writes any issue time).
    """

    index: int
    signer: str
    valid_from: datetime
    revoked_at: datetime | None
    revoked_log_size: int | None = None

    def signed_by(self, address: str) -> bool:
        """Whether ``address`` is this key's, in any letter case (:func:`same_address`)."""
        return same_address(self.signer, address)

    def valid_at(self, moment: datetime) -> bool:
        """Whether a signature made at ``moment`` is valid under this key:
        ``valid_from <= moment < revoked_at`` (no upper bound while ``revoked_at`` is None),
        the contract's ``isKeyValidAt``. The chain keeps both bounds in whole seconds and
        compares the whole second of ``moment``; comparing the datetime itself gives the same
        answer for bounds in whole seconds. Raises ``ValueError`` for a naive ``moment``."""
        if moment.utcoffset() is None:
            raise ValueError("moment must be a timezone-aware datetime")
        return self.valid_from <= moment and (self.revoked_at is None or moment < self.revoked_at)

    def revoked_before(self, leaf_index: int) -> bool:
        """Whether the leaf at ``leaf_index`` was first anchored after this key's recorded
        revocation (the contract's ``LedgerKeyRevokedBeforeAnchoring``)."""
        return self.revoked_log_size is not None and leaf_index >= self.revoked_log_size


@dataclass(frozen=True)
class Hospital:
    """A registered hospital and the history of its keys (by index, oldest first)."""

    code: str
    level: HospitalLevel
    keys: tuple[HospitalKey, ...]

    def keys_of(self, signer: str) -> tuple[HospitalKey, ...]:
        """Every key of this hospital with the address ``signer`` (one, unless an address was
        registered twice), oldest first."""
        return tuple(key for key in self.keys if key.signed_by(signer))

    def key_for(self, signer: str, moment: datetime) -> HospitalKey | None:
        """The newest key with the address ``signer`` valid at ``moment``, or None."""
        return next((k for k in reversed(self.keys_of(signer)) if k.valid_at(moment)), None)

    def revoked_log_size(self, signer: str) -> int | None:
        """The smallest log size at which a revocation of a key with the address ``signer``
        was recorded, or None: an invoice of that key at that leaf index or beyond was first
        anchored after the revocation and is refused whatever its issue time."""
        sizes = [k.revoked_log_size for k in self.keys_of(signer) if k.revoked_log_size is not None]
        return min(sizes, default=None)


def judge_key(
    hospital: Hospital | None, signer: str, moment: datetime, leaf_index: int | None = None
) -> KeyRejection | None:
    """Why a signature by ``signer`` for ``hospital`` made at ``moment`` is not valid, or None
    when it is: the one judge of a hospital key, for the service's registry cache and the
    offline trust list alike, with the contract's rules.

    - ``signer`` must be the address of some key of the hospital, in any letter case;
    - when the invoice's ``leaf_index`` in the log is known, no key of the hospital with this
      address may have had its revocation recorded at a log size at or below it
      (``_requireSignedByHospital``: the invoice was first anchored after the revocation, so
      the issue time its signer wrote proves nothing);
    - some key with this address must be valid at ``moment`` (:meth:`HospitalKey.valid_at`).

    A refusal at ``moment`` is ``key_revoked`` when a key with this address had started by
    then, else ``key_not_yet_valid``. Raises ``ValueError`` for a naive ``moment``.
    """
    if moment.utcoffset() is None:
        raise ValueError("moment must be a timezone-aware datetime")
    if hospital is None:
        return KeyRejection.UNKNOWN_HOSPITAL
    keys = hospital.keys_of(signer)
    if not keys:
        return KeyRejection.UNKNOWN_KEY
    if leaf_index is not None and any(key.revoked_before(leaf_index) for key in keys):
        return KeyRejection.KEY_REVOKED_BEFORE_ANCHORING
    if hospital.key_for(signer, moment) is not None:
        return None
    if any(key.valid_from <= moment for key in keys):
        return KeyRejection.KEY_REVOKED
    return KeyRejection.KEY_NOT_YET_VALID


@dataclass(frozen=True)
class Checkpoint:
    """An anchored (tree size, root) of the invoice log."""

    size: int
    root: bytes


@dataclass(frozen=True)
class InvoiceLeaf:
    """The fields of an invoice in the log; ``entry`` is what the log hashes (104 bytes)."""

    invoice_id: bytes
    record_hash: bytes
    hospital: str
    total: int  # fen

    def __post_init__(self) -> None:
        if len(self.invoice_id) != 32 or len(self.record_hash) != 32:
            raise ValueError("invoice_id and record_hash are 32 bytes")
        if not 0 <= self.total < 2**64:
            raise ValueError(f"total must be a non-negative uint64 of fen, got {self.total}")

    def entry(self) -> bytes:
        """abi.encodePacked(invoiceId, recordHash, hospital, uint64 total)."""
        return (
            self.invoice_id
            + self.record_hash
            + hospital_code_bytes(self.hospital)
            + self.total.to_bytes(8, "big")
        )

    @classmethod
    def from_entry(cls, entry: bytes) -> InvoiceLeaf:
        """Inverse of :meth:`entry`."""
        if len(entry) != 104:
            raise ValueError(f"an invoice leaf entry is 104 bytes, got {len(entry)}")
        return cls(
            entry[:32],
            entry[32:64],
            hospital_code_str(entry[64:96]),
            int.from_bytes(entry[96:], "big"),
        )

    def as_abi(self) -> tuple[bytes, bytes, bytes, int]:
        return (self.invoice_id, self.record_hash, hospital_code_bytes(self.hospital), self.total)


@dataclass(frozen=True)
class Settlement:
    """One payment in a settlement batch, proven against the batch's checkpoint, with the
    hospital's 65-byte EIP-712 signature of the invoice (the leaf's record hash is the signed
    struct hash)."""

    leaf: InvoiceLeaf
    leaf_index: int
    proof: tuple[bytes, ...]
    amount: int  # fen
    signature: bytes

    def as_abi(self) -> tuple[object, ...]:
        return (self.leaf.as_abi(), self.leaf_index, list(self.proof), self.amount, self.signature)


@dataclass(frozen=True)
class Replacement:
    """A reversal that named its replacement (``InvoiceReplaced``): ``invoice_id`` was voided
    and the ``carried`` fen paid on it were added to what ``replacement_id`` has paid, which
    was ``replacement_paid`` fen after it."""

    invoice_id: bytes
    replacement_id: bytes
    carried: int  # fen
    replacement_paid: int  # fen
    block_number: int
    tx_hash: bytes


def carried_into(replacements: Iterable[Replacement]) -> dict[bytes, int]:
    """The fen carried into each replacement by the reversals that named it: the part of an
    invoice's ``paid`` on chain that no ``InvoiceSettled`` of its own explains."""
    carried: dict[bytes, int] = {}
    for r in replacements:
        carried[r.replacement_id] = carried.get(r.replacement_id, 0) + r.carried
    return carried


@dataclass(frozen=True)
class InvoiceLedgerState:
    """What the ledger knows of an invoice's reimbursement. ``paid`` counts what was carried
    over from the invoices it replaces (:class:`Replacement`)."""

    invoice_id: bytes
    voided: bool
    locked_by: str | None
    paid: int  # fen, cumulative over every payer
    record_tag: bytes = field(default=b"\x00" * 19)
