"""Yearly totals: what an unpaid claim took is given back, never below zero."""

from __future__ import annotations

import pytest

from claims import Accumulator, ClaimInputInvalid, PoolUsage

TAKEN = Accumulator("basic", 2025, (("inpatient", PoolUsage(100_000, 612_148)),))


@pytest.mark.parametrize(
    ("deductible", "paid", "left"),
    [
        (100_000, 612_148, PoolUsage(0, 0)),  # the only claim of the year
        (40_000, 12_148, PoolUsage(60_000, 600_000)),  # one of several
        (150_000, 700_000, PoolUsage(0, 0)),  # more than recorded: floored at zero
    ],
)
def test_given_back(deductible: int, paid: int, left: PoolUsage) -> None:
    assert TAKEN.given_back("inpatient", deductible, paid).pool("inpatient") == left
    assert TAKEN.pool("inpatient") == PoolUsage(100_000, 612_148)  # never changed in place


def test_given_back_leaves_other_pools_and_refuses_negatives() -> None:
    both = TAKEN.with_pool("outpatient", PoolUsage(30_000, 5_000))
    assert both.given_back("inpatient", 1, 1).pool("outpatient") == PoolUsage(30_000, 5_000)
    with pytest.raises(ClaimInputInvalid, match="given_back"):
        TAKEN.given_back("inpatient", -1, 0)
