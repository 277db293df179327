"""Only a lost race is retried: the unique claim constraint, new yearly totals stored meanwhile,
a locked SQLite database, a PostgreSQL serialization failure; any other database error
propagates at once."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from api.flows import claim as claim_flow
from api.flows.totals import TotalsConflict, is_race
from tests.fast.conftest import World


class _PgError(Exception):
    def __init__(self, sqlstate: str, constraint: str | None = None) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate
        self.diag = type("Diag", (), {"constraint_name": constraint})()


def _integrity(orig: Exception) -> IntegrityError:
    return IntegrityError("INSERT ...", {}, orig)


def _operational(orig: Exception) -> OperationalError:
    return OperationalError("UPDATE ...", {}, orig)


@pytest.mark.parametrize(
    ("error", "race"),
    [
        (TotalsConflict([(1, "basic", 2026)]), True),
        (
            _integrity(
                sqlite3.IntegrityError("UNIQUE constraint failed: claims.invoice_id, claims.payer")
            ),
            True,
        ),
        (
            _integrity(
                sqlite3.IntegrityError(
                    "UNIQUE constraint failed: payer_accumulators.citizen_id, "
                    "payer_accumulators.payer, payer_accumulators.year"
                )
            ),
            True,
        ),
        (_integrity(_PgError("23505", "uq_claims_invoice_payer")), True),
        (_integrity(_PgError("23505", "pk_payer_accumulators")), True),
        (_operational(sqlite3.OperationalError("database is locked")), True),
        (_operational(_PgError("40001")), True),  # serialization failure
        (_operational(_PgError("40P01")), True),  # deadlock
        (
            _integrity(sqlite3.IntegrityError("NOT NULL constraint failed: claims.amount_fen")),
            False,
        ),
        (_integrity(_PgError("23503", "fk_claims_citizen_id_citizens")), False),
        (_operational(sqlite3.OperationalError("no such table: claims")), False),
        (_operational(sqlite3.OperationalError("disk I/O error")), False),
        (_operational(_PgError("57P01")), False),  # the server shut down
        (ValueError("not a database error"), False),
    ],
)
def test_what_is_a_race(error: Exception, race: bool) -> None:
    assert is_race(error) is race


def _failing_store(error: Exception, calls: list[int]) -> Any:
    def store(*_: Any) -> None:
        calls.append(1)
        raise error

    return store


def test_an_operational_error_that_is_no_race_propagates_at_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    broken = _operational(sqlite3.OperationalError("no such table: payer_accumulators"))
    monkeypatch.setattr(claim_flow.claim_totals, "store", _failing_store(broken, calls))
    with pytest.raises(OperationalError, match="no such table"):
        world.submit(world.invoice())
    assert calls == [1]


def test_a_locked_database_is_retried_then_propagates(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    locked = _operational(sqlite3.OperationalError("database is locked"))
    monkeypatch.setattr(claim_flow.claim_totals, "store", _failing_store(locked, calls))
    with pytest.raises(OperationalError, match="database is locked"):
        world.submit(world.invoice())
    assert calls == [1, 1, 1]


def test_a_batch_that_fails_for_no_race_is_not_taken_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    broken = _operational(sqlite3.OperationalError("disk I/O error"))
    monkeypatch.setattr(claim_flow.claim_totals, "store", _failing_store(broken, calls))
    requests = [
        claim_flow.ClaimRequest(world.citizen, "0x" + world.invoice().hex(), "basic", "office")
        for _ in range(2)
    ]
    with pytest.raises(OperationalError, match="disk I/O error"):
        world.claim.submit_many(requests)
    assert calls == [1]
