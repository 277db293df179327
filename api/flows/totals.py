"""A citizen's yearly totals with a payer (``payer_accumulators``) as the claim flow stores them.

Every row carries a version: a write is an ``UPDATE ... WHERE version = <the version read>``
whose row count is checked, so two workers that read the same totals cannot both write them
(the second gets ``TotalsConflict`` and decides again on the winner's totals). Rows read to be
changed in the same transaction as a claim's state are read ``FOR UPDATE`` (PostgreSQL; SQLite
has one writer at a time, held from the claim's update on).

What a claim took is stored with it (``adjudication["usage"]``: year, pool, deductible used,
amount), so that a claim that ends unpaid (rejected by a reviewer, refused by the ledger) gives
exactly that back, in the transaction that rejects it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, insert, select, tuple_, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

import claims
from api.db import models
from api.db.queries import chunks

Key = tuple[int, str, int]
"""(citizen id, payer, policy year)."""

Stored = dict[Key, tuple[dict[str, Any], int]]
"""Totals as read: key -> (pools as stored, version)."""


class TotalsConflict(Exception):
    """Raised when yearly totals were written by someone else since they were read; the
    caller's transaction must be rolled back and the claims decided again."""

    def __init__(self, keys: Iterable[Key]) -> None:
        self.keys = sorted(keys)
        super().__init__(f"yearly totals changed since read: {self.keys}")


#: What a lost race for a claim or for yearly totals looks like in an ``IntegrityError``: the
#: claims' unique (invoice, payer) and the totals' key, by PostgreSQL's constraint name or
#: SQLite's "UNIQUE constraint failed: <table>.<columns>".
_RACED_CONSTRAINTS = ("uq_claims_invoice_payer", "pk_payer_accumulators")
_RACED_TABLES = ("claims.invoice_id", "payer_accumulators.citizen_id")
#: PostgreSQL's serialization failure and deadlock (SQLSTATE): the transaction may be retried.
_RETRYABLE_SQLSTATES = ("40001", "40P01")


def is_race(exc: BaseException) -> bool:
    """Whether ``exc`` is a race with a concurrent writer, so that the claims may be decided
    again: ``TotalsConflict``; an ``IntegrityError`` of the one claim per (invoice, payer)
    constraint or of new yearly totals stored meanwhile; SQLite's "database is locked" or a
    PostgreSQL serialization failure or deadlock. Any other database error is not a race (a
    bad value, a missing table, a lost connection) and must propagate."""
    if isinstance(exc, TotalsConflict):
        return True
    orig = getattr(exc, "orig", None)
    if isinstance(exc, IntegrityError):
        constraint = getattr(getattr(orig, "diag", None), "constraint_name", None)
        if constraint is not None:
            return constraint in _RACED_CONSTRAINTS
        text = str(orig)
        return "UNIQUE constraint failed" in text and any(t in text for t in _RACED_TABLES)
    if isinstance(exc, OperationalError):
        sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        if sqlstate is not None:
            return sqlstate in _RETRYABLE_SQLSTATES
        return "database is locked" in str(orig)
    return False


def to_json(acc: claims.Accumulator) -> dict[str, Any]:
    return {name: asdict(usage) for name, usage in acc.pools}


def from_json(payer: str, year: int, data: Mapping[str, Any]) -> claims.Accumulator:
    return claims.Accumulator(
        payer,
        year,
        tuple((name, claims.PoolUsage(**usage)) for name, usage in sorted(data.items())),
    )


def load(db: Session, citizen_ids: Iterable[int]) -> Stored:
    """Every stored total of these citizens, with its version."""
    wanted = sorted(set(citizen_ids))
    found: Stored = {}
    acc = models.PayerAccumulator
    for chunk in chunks(wanted):
        for row in db.execute(
            select(acc.citizen_id, acc.payer, acc.year, acc.pools, acc.version).where(
                acc.citizen_id.in_(chunk)
            )
        ):
            found[row.citizen_id, row.payer, row.year] = (row.pools, row.version)
    return found


def store(db: Session, moved: Mapping[Key, tuple[dict[str, Any], int | None]]) -> None:
    """Writes moved totals: ``moved[key] = (pools, version read)``, version ``None`` for totals
    that were not stored. Raises ``TotalsConflict`` when a stored one changed since it was read
    (a new one stored meanwhile fails the insert with ``IntegrityError``)."""
    table = cast(Table, models.PayerAccumulator.__table__)
    updates = [
        {"c": c, "p": p, "y": y, "v": version, "pools": pools}
        for (c, p, y), (pools, version) in sorted(moved.items())
        if version is not None
    ]
    if updates:
        statement = (
            update(table)
            .where(
                and_(
                    table.c.citizen_id == bindparam("c"),
                    table.c.payer == bindparam("p"),
                    table.c.year == bindparam("y"),
                    table.c.version == bindparam("v"),
                )
            )
            .values(pools=bindparam("pools"), version=bindparam("v") + 1)
        )
        result = db.connection().execute(statement, updates)
        if result.rowcount != len(updates):
            raise TotalsConflict(key for key, (_, version) in moved.items() if version is not None)
    inserts = [
        {"citizen_id": c, "payer": p, "year": y, "pools": pools, "version": 0}
        for (c, p, y), (pools, version) in sorted(moved.items())
        if version is None
    ]
    if inserts:
        db.execute(insert(models.PayerAccumulator), inserts)


def locked(db: Session, keys: Iterable[Key]) -> Stored:
    """These totals read to be changed in this transaction (``FOR UPDATE`` on PostgreSQL)."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    acc = models.PayerAccumulator
    found: Stored = {}
    for chunk in chunks(wanted, 300):  # three values a key
        rows = db.execute(
            select(acc.citizen_id, acc.payer, acc.year, acc.pools, acc.version)
            .where(tuple_(acc.citizen_id, acc.payer, acc.year).in_(chunk))
            .order_by(acc.citizen_id, acc.payer, acc.year)
            .with_for_update()
        )
        for row in rows:
            found[row.citizen_id, row.payer, row.year] = (row.pools, row.version)
    return found


def usage_of(claim: models.Claim) -> tuple[Key, str, int, int] | None:
    """What a claim took of its citizen's yearly totals: (key, pool, deductible, amount), or
    None when it took nothing (rejected when decided)."""
    usage = (claim.adjudication or {}).get("usage")
    if not usage:
        return None
    key = (claim.citizen_id, claim.payer, int(usage["year"]))
    return key, str(usage["pool"]), int(usage["deductible_fen"]), int(usage["paid_fen"])


def give_back(db: Session, rejected: Iterable[models.Claim]) -> None:
    """Gives back what each claim took of the yearly totals, in the caller's transaction, which
    moves the claims to ``rejected``: a claim gets there once (each move is conditional on the
    state it leaves), so nothing is given back twice."""
    taken = [usage for claim in rejected if (usage := usage_of(claim)) is not None]
    if not taken:
        return
    stored = locked(db, [usage[0] for usage in taken])
    accumulators = {key: from_json(key[1], key[2], pools) for key, (pools, _) in stored.items()}
    for key, pool, deductible, paid in taken:
        if key in accumulators:
            accumulators[key] = accumulators[key].given_back(pool, deductible, paid)
    store(db, {key: (to_json(acc), stored[key][1]) for key, acc in accumulators.items()})
