"""The invoice log's port: what every store of the append-only Merkle log promises, and raises.

The sequencer (``chain.sequencer.Sequencer``), the service's ledger gateway
(``api.adapters.ledger.LedgerGateway``, which serves the verifier's facts and the reads) and the
tools hold an :class:`InvoiceLog`, never a particular store. ``chain.log.MerkleLog`` is the
SQLite store; another (PostgreSQL, say) implements the same protocol, raises the same errors
and passes the same tests (``tests/chain/test_log.py``), and its callers do not change.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

__all__ = ["InvoiceLog", "LogConflict", "LogCorrupt", "LogError", "LogRangeError"]


class LogError(Exception):
    """Root of every error raised by a store of the invoice log."""


class LogConflict(LogError):
    """Raised when a key is appended with an entry that differs from the one it already has.

    ``index`` is the key's index in the log, or, for a key repeated inside one batch, the index
    its first occurrence would have received. Nothing of the batch is written.
    """

    def __init__(self, key: bytes, index: int) -> None:
        super().__init__(f"key {key.hex()} is already at index {index} with a different entry")
        self.key = key
        self.index = index


class LogRangeError(LogError, IndexError):
    """Raised when a leaf index or tree size refers to leaves the log does not hold.

    ``value`` is the index or size asked for, ``size`` the log's size at the time.
    """

    def __init__(self, value: int, size: int, what: str = "index") -> None:
        super().__init__(f"{what} {value} is out of range for the log of size {size}")
        self.value = value
        self.size = size
        self.what = what


class LogCorrupt(LogError):
    """Raised when the store lacks a node or leaf that its size says it must hold."""


class InvoiceLog(Protocol):
    """An append-only RFC 9162 Merkle log of ``(key, entry)`` leaves, keyed by invoice id.

    Ordering: leaves are numbered 0, 1, 2, ... in the order they were appended, a batch in
    its own order; an index, once given, always names the same key and entry, and the root
    of a given size never changes (so a checkpoint anchored on chain stays provable for
    ever). Nothing is ever removed or rewritten.

    Idempotence: a key is in the log at most once. Appending a key again with the same entry
    appends nothing and answers its existing index; with another entry it is a
    :class:`LogConflict`.

    Atomicity and durability: an append is one transaction, all of the batch or none of it,
    and once :meth:`append` returns its leaves survive a crash and a power loss. A store that
    could come back shorter would re-grow a *different* tree at sizes already reported and
    anchored (the sequencer then stops with ``LogDiverged``).

    Concurrency: one writer at a time, serialised by the caller (the ledger gateway's lock);
    a store may be read from any one thread at a time, not necessarily the one that opened
    it. Reads see every append that has returned.

    Sizes and indexes out of range raise :class:`LogRangeError`; proofs raise
    ``chain.merkle.IndexOutOfRange`` / ``InvalidSize`` for arguments they cannot answer;
    :class:`LogCorrupt` means the store lost what its size says it holds.
    """

    @property
    def size(self) -> int:
        """Number of leaves in the log."""
        ...

    def index_of(self, key: bytes) -> int | None:
        """Index of the leaf appended under ``key``, or None."""
        ...

    def entries(self, lo: int, hi: int) -> list[tuple[bytes, bytes]]:
        """(key, entry) of the leaves ``lo .. hi-1``, in order (fewer when ``hi`` is past
        the end)."""
        ...

    def leaf_hash(self, index: int) -> bytes:
        """The RFC 9162 leaf hash of leaf ``index``: SHA-256(0x00 || entry)."""
        ...

    def root(self, size: int | None = None) -> bytes:
        """The Merkle tree hash of the first ``size`` leaves (default: all)."""
        ...

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 inclusion proof of leaf ``index`` in the tree of ``size`` (default: all)."""
        ...

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """RFC 9162 consistency proof from ``old_size`` to ``new_size`` (default: all)."""
        ...

    def append(self, items: Sequence[tuple[bytes, bytes]]) -> list[int]:
        """Appends ``(key, entry)`` pairs in one durable transaction; returns their indexes
        (an existing index for a key already in the log with the same entry)."""
        ...

    def close(self) -> None:
        """Releases the store; the log is not used after."""
        ...
