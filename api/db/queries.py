"""Query habits shared by the flows and the reads: chunked ``IN (...)``, an invoice's status,
its log leaf."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Literal, Protocol, TypeVar

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from chain.model import InvoiceLeaf

CHUNK = 500
"""Values per ``IN (...)`` query: well under SQLite's and PostgreSQL's parameter limits."""

T = TypeVar("T")

InvoiceStatus = Literal["pending", "anchored", "voided"]
"""Where an invoice is: not yet in a checkpoint, in one, or reversed by a red-letter invoice."""


def chunks(values: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    """``values`` in consecutive slices of at most ``size``, one per ``IN (...)`` query.

    Callers that want one query order (a deterministic lock order, say) sort before calling.
    """
    for lo in range(0, len(values), size):
        yield values[lo : lo + size]


class _StatusColumns(Protocol):
    @property
    def voided_by(self) -> bytes | None: ...
    @property
    def checkpoint_size(self) -> int | None: ...


class _LeafColumns(Protocol):
    @property
    def invoice_id(self) -> bytes: ...
    @property
    def record_hash(self) -> bytes: ...
    @property
    def hospital(self) -> str: ...
    @property
    def total(self) -> int: ...


def invoice_status(row: _StatusColumns) -> InvoiceStatus:
    """An invoice row's status: voided wins over anchored, anchored over pending."""
    if row.voided_by:
        return "voided"
    return "anchored" if row.checkpoint_size else "pending"


def leaf_of(row: _LeafColumns) -> InvoiceLeaf:
    """The log leaf of an invoice row (an ORM row or a row of these four columns)."""
    return InvoiceLeaf(row.invoice_id, row.record_hash, row.hospital, row.total)


def dialect_insert(db: Session) -> Any:
    """The dialect's INSERT, which has ON CONFLICT DO UPDATE (PostgreSQL and SQLite)."""
    return pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
