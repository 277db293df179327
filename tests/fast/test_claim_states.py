"""Claim states: one enum, one table of allowed moves, checked wherever a state is written."""

from __future__ import annotations

import pytest

from api.db.models import CLAIM_TRANSITIONS, ClaimState, IllegalClaimTransition
from api.flows import settle
from tests.fast.conftest import World

S = ClaimState


def test_the_states_are_the_stored_strings() -> None:
    assert [s.value for s in ClaimState] == [
        "submitted",
        "verified",
        "adjudicated",
        "in_review",
        "approved",
        "settling",
        "settled",
        "paid",
        "rejected",
    ]
    assert set(CLAIM_TRANSITIONS) == set(ClaimState)


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (S.ADJUDICATED, S.APPROVED),
        (S.ADJUDICATED, S.IN_REVIEW),
        (S.ADJUDICATED, S.REJECTED),
        (S.IN_REVIEW, S.APPROVED),
        (S.IN_REVIEW, S.REJECTED),
        (S.APPROVED, S.SETTLING),
        (S.SETTLING, S.PAID),
        (S.SETTLING, S.APPROVED),  # a crash before the transaction, a figure that moved
        (S.SETTLING, S.REJECTED),  # refused by the ledger, priced again to nothing
        (S.SETTLED, S.PAID),
    ],
)
def test_allowed_moves(current: ClaimState, new: ClaimState) -> None:
    assert current.to(new) is new


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (S.PAID, S.APPROVED),
        (S.PAID, S.REJECTED),
        (S.REJECTED, S.APPROVED),
        (S.APPROVED, S.PAID),  # never paid without being taken by a settlement
        (S.APPROVED, S.REJECTED),
        (S.IN_REVIEW, S.SETTLING),  # never settled while in review
        (S.SETTLING, S.IN_REVIEW),
    ],
)
def test_illegal_moves_raise(current: ClaimState, new: ClaimState) -> None:
    with pytest.raises(IllegalClaimTransition, match=f"from {current} to {new}") as raised:
        current.to(new)
    assert (raised.value.current, raised.value.new) == (current, new)


def test_final_states_go_nowhere() -> None:
    assert CLAIM_TRANSITIONS[S.PAID] == CLAIM_TRANSITIONS[S.REJECTED] == frozenset()


def test_a_flow_writing_an_illegal_move_raises(world: World) -> None:
    """The settle flow refusing a payment of a claim already paid: the guard stops it."""
    claim = world.submit(world.invoice())
    assert world.settle.run() == 1
    with world.uow() as db, pytest.raises(IllegalClaimTransition, match="from paid to rejected"):
        settle._refused(db, claim.id, None, claim.created_at)
    assert world.stored(claim.id).state == S.PAID
