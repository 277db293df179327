"""Integer money: fen, basis points, and the one rounding rule of adjudication.

A ratio is an integer number of basis points (bp): 10000 bp = 100%, 7000 bp = 70%. A share of an
amount is rounded half up to the fen (0.5 fen goes to the larger side), by integer arithmetic
only, so the same inputs give the same fen on every platform.
"""

from __future__ import annotations

BP = 10_000  # basis points in 100%


def share_of(amount_fen: int, ratio_bp: int) -> int:
    """``amount_fen x ratio_bp / 10000``, rounded half up to the fen.

    With ``0 <= ratio_bp <= 10000`` and ``amount_fen >= 0`` the result lies in
    ``[0, amount_fen]``.
    """
    if amount_fen < 0 or not 0 <= ratio_bp <= BP:
        raise ValueError(f"share_of({amount_fen}, {ratio_bp}): out of range")
    return (amount_fen * ratio_bp * 2 + BP) // (2 * BP)


def yuan(fen: int) -> str:
    """Fen as yuan with two decimals and thousands separators: 123456 -> '1,234.56'."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole:,}.{cents:02d}"


def percent(ratio_bp: int) -> str:
    """Basis points as a percentage: 7000 -> '70%', 725 -> '7.25%'."""
    whole, rest = divmod(ratio_bp, 100)
    return f"{whole}%" if rest == 0 else f"{whole}.{rest:02d}".rstrip("0") + "%"
