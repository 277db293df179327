"""Claim views are loaded in batch: a list of 50 claims takes as many queries as a list of one."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from api.read.claims import ClaimReads
from tests.fast.conftest import World


@contextmanager
def _counting(world: World) -> Iterator[Callable[[], int]]:
    engine = world.uow.kw["bind"]
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield lambda: len(statements)
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _claims(world: World, n: int) -> None:
    for _ in range(n):
        world.submit(world.invoice())


def _queries(world: World, read: Callable[[ClaimReads], list[Any]]) -> tuple[int, int]:
    reads = ClaimReads(world.uow)
    with _counting(world) as count:
        found = read(reads)
    return len(found), count()


def test_a_citizens_list_costs_the_same_queries_for_1_and_50_claims(
    world: World, other: World
) -> None:
    _claims(world, 1)
    _claims(other, 50)
    one = _queries(world, lambda r: r.of_citizen(world.citizen.id))
    fifty = _queries(other, lambda r: r.of_citizen(other.citizen.id))
    assert (one[0], fifty[0]) == (1, 50)
    assert one[1] == fifty[1]


def test_a_search_with_history_costs_the_same_queries_for_1_and_50_claims(
    world: World, other: World
) -> None:
    _claims(world, 1)
    _claims(other, 50)
    one = _queries(world, lambda r: r.search(None, "basic", None, 500))
    fifty = _queries(other, lambda r: r.search(None, "basic", None, 500))
    assert (one[0], fifty[0]) == (1, 50)
    assert one[1] == fifty[1]
    (view,) = ClaimReads(world.uow).search(None, None, None, 1)
    assert [e["state"] for e in view.history] == [
        "submitted",
        "verified",
        "adjudicated",
        "approved",
    ]
    assert view.adjudication["lines"][0]["line"] == 1  # explained line by line
