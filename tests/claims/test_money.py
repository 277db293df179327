"""Integer money helpers and the name normalisation the audit uses."""

from __future__ import annotations

import pytest

from claims.money import percent, share_of, yuan
from claims.names import normalise_name, similarity_permille


@pytest.mark.parametrize(
    ("amount", "ratio_bp", "expected"),
    [
        (10_000, 7_000, 7_000),
        (5, 9_000, 5),  # 4.5 -> 5: half up
        (4, 9_000, 4),  # 3.6 -> 4
        (6, 9_000, 5),  # 5.4 -> 5
        (1, 5_000, 1),  # 0.5 -> 1
        (1, 4_999, 0),  # 0.4999 -> 0
        (12_345, 1_000, 1_235),  # 1,234.5 -> 1,235
        (0, 10_000, 0),
        (123, 0, 0),
        (123, 10_000, 123),
        (2**62, 10_000, 2**62),  # no overflow, no float
    ],
)
def test_share_of_rounds_half_up(amount: int, ratio_bp: int, expected: int) -> None:
    assert share_of(amount, ratio_bp) == expected


@pytest.mark.parametrize(("amount", "ratio_bp"), [(-1, 100), (1, -1), (1, 10_001)])
def test_share_of_refuses_out_of_range(amount: int, ratio_bp: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        share_of(amount, ratio_bp)


def test_formatting() -> None:
    assert [yuan(f) for f in (0, 5, 123_456, -150, 40_000_000)] == [
        "0.00",
        "0.05",
        "1,234.56",
        "-1.50",
        "400,000.00",
    ]
    assert [percent(bp) for bp in (7_000, 725, 750, 5, 10_000)] == [
        "70%",
        "7.25%",
        "7.5%",
        "0.05%",
        "100%",
    ]


def test_names() -> None:
    assert normalise_name(" 阿莫西林胶囊（0.25ｇ）。") == normalise_name("阿莫西林胶囊(0.25g)")
    assert normalise_name("Ⅰ级护理") == "i级护理"
    assert similarity_permille("abcd", "abcd") == 1000
    assert similarity_permille("abcd", "") == 0
    assert similarity_permille("普通病房床位费", "普通病房床位费三人间") == 824  # 2*7/17
