"""A citizen's yearly running totals with one payer: deductible used and amount paid, per pool.

Adjudication never changes an accumulator; it returns a new one beside its result, which the
caller stores with the claim. A claim that ends unpaid gives back what it took
(``Accumulator.given_back``).
"""

from __future__ import annotations

from dataclasses import dataclass

from claims.errors import ClaimInputInvalid


@dataclass(frozen=True, slots=True)
class PoolUsage:
    """Totals for one pool (all visits, outpatient or inpatient) in one year."""

    deductible_used_fen: int = 0  # how much of the deductible (or threshold) is already met
    paid_fen: int = 0  # how much the payer has paid (counts against the caps)

    def __post_init__(self) -> None:
        for name in ("deductible_used_fen", "paid_fen"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ClaimInputInvalid(name, f"must be a non-negative integer, got {value!r}")


@dataclass(frozen=True, slots=True)
class Accumulator:
    """One citizen's totals with one payer in one policy year, by pool name."""

    payer: str
    year: int
    pools: tuple[tuple[str, PoolUsage], ...] = ()

    def __post_init__(self) -> None:
        names = [name for name, _ in self.pools]
        if len(set(names)) != len(names):
            raise ClaimInputInvalid("pools", f"a pool appears twice: {names}")
        ordered = tuple(sorted(self.pools, key=lambda pool: pool[0]))
        if ordered != self.pools:
            object.__setattr__(self, "pools", ordered)

    @classmethod
    def empty(cls, payer: str, year: int) -> Accumulator:
        """Nothing used yet: the start of a year."""
        return cls(payer, year)

    def pool(self, name: str) -> PoolUsage:
        """The totals of one pool (zero when the pool has not been used)."""
        for pool_name, usage in self.pools:
            if pool_name == name:
                return usage
        return PoolUsage()

    @property
    def paid_fen(self) -> int:
        """Paid over every pool: what the policy's annual cap is checked against."""
        return sum(usage.paid_fen for _, usage in self.pools)

    def with_pool(self, name: str, usage: PoolUsage) -> Accumulator:
        """A new accumulator with the totals of ``name`` replaced."""
        kept = tuple((n, u) for n, u in self.pools if n != name)
        return Accumulator(self.payer, self.year, (*kept, (name, usage)))

    def given_back(self, name: str, deductible_fen: int, paid_fen: int) -> Accumulator:
        """A new accumulator without what one claim had taken of pool ``name``: its deductible
        use and its amount (each floored at zero), for a claim that ends unpaid."""
        if min(deductible_fen, paid_fen) < 0:
            raise ClaimInputInvalid("given_back", "amounts to give back must be >= 0")
        usage = self.pool(name)
        return self.with_pool(
            name,
            PoolUsage(
                max(0, usage.deductible_used_fen - deductible_fen),
                max(0, usage.paid_fen - paid_fen),
            ),
        )
