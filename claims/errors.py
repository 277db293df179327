"""The errors of the claims package: one root, one subclass per kind of problem."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason a data file is refused: where (a key path such as ``benefits.all.ratio_bp``)
    and why."""

    key_path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.key_path}: {self.reason}"


class ClaimsError(Exception):
    """Root of the errors raised by the claims package."""


class DataFileInvalid(ClaimsError):
    """Raised when a policy or rules file cannot be read or fails validation.

    ``source`` names the file, ``problems`` lists every failing key path with its reason.
    """

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        shown = "; ".join(str(p) for p in self.problems[:8])
        more = f" (+{len(self.problems) - 8} more)" if len(self.problems) > 8 else ""
        super().__init__(f"{source}: {shown}{more}")


class PolicyInvalid(DataFileInvalid):
    """Raised when a payer policy file (claims/policies/*.toml) is unreadable or invalid."""


class RulesInvalid(DataFileInvalid):
    """Raised when the smart-audit rules file (claims/rules.toml) is unreadable or invalid."""


class ClaimInputInvalid(ClaimsError, ValueError):
    """Raised when a plain input (invoice, line, citizen, catalogue entry) is malformed: a
    naive datetime, negative money, an unknown sex; ``field`` names the offending field."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class AccumulatorMismatch(ClaimsError, ValueError):
    """Raised when an accumulator of another payer or another year is passed to adjudication."""

    def __init__(self, expected: tuple[str, int], actual: tuple[str, int]) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"accumulator is for payer {actual[0]!r} year {actual[1]}, "
            f"adjudication needs payer {expected[0]!r} year {expected[1]}"
        )


class DuplicatePayer(ClaimsError, ValueError):
    """Raised when the same payer appears twice in a payer chain."""

    def __init__(self, payer: str) -> None:
        self.payer = payer
        super().__init__(f"payer {payer!r} appears twice in the payer chain")
