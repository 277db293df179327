"""Policy arithmetic, one table per concern; every expected fen is worked out by hand.

Test policy figures (tests/claims/factories.py): basic outpatient deductible 100.00 yuan
(10,000 fen), ratios township 90% / primary 80% / secondary 70% / tertiary 60%, outpatient cap
50,000 fen; inpatient deductible 20,000 / 40,000 / 60,000 / 100,000 fen and ratios 95% / 85% /
75% / 65%, inpatient cap 1,000,000; annual cap over both 1,000,000; class B self-pays 10%.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from claims import (
    AccumulatorMismatch,
    ClaimInputInvalid,
    DuplicatePayer,
    HospitalLevel,
    ItemClass,
    PoolUsage,
    Status,
    VisitType,
    adjudicate,
    chain_payers,
)
from tests.claims.factories import (
    CST,
    accumulator,
    citizen,
    invoice,
    line,
    policies,
)

A, B, C, SELF = ItemClass.A, ItemClass.B, ItemClass.C, ItemClass.SELF_PAY
OUT, IN = VisitType.OUTPATIENT, VisitType.INPATIENT
TOWNSHIP, PRIMARY, SECONDARY, TERTIARY = (
    HospitalLevel.TOWNSHIP,
    HospitalLevel.PRIMARY,
    HospitalLevel.SECONDARY,
    HospitalLevel.TERTIARY,
)
POLICIES = policies()


# (id, visit, level, [(class, fen)], pool usage (deductible used, paid), amount, deductible
#  applied, reason). Derivation in the comment of each row.
BASIC_TABLE = [
    # 30,000 - 10,000 deductible = 20,000 x ratio
    ("out-township", OUT, TOWNSHIP, [(A, 30_000)], (0, 0), 18_000, 10_000, "paid"),
    ("out-primary", OUT, PRIMARY, [(A, 30_000)], (0, 0), 16_000, 10_000, "paid"),
    ("out-secondary", OUT, SECONDARY, [(A, 30_000)], (0, 0), 14_000, 10_000, "paid"),
    ("out-tertiary", OUT, TERTIARY, [(A, 30_000)], (0, 0), 12_000, 10_000, "paid"),
    # 200,000 - level deductible, x level ratio
    ("in-township", IN, TOWNSHIP, [(A, 200_000)], (0, 0), 171_000, 20_000, "paid"),  # 180,000 x 95%
    ("in-primary", IN, PRIMARY, [(A, 200_000)], (0, 0), 136_000, 40_000, "paid"),  # 160,000 x 85%
    ("in-secondary", IN, SECONDARY, [(A, 200_000)], (0, 0), 105_000, 60_000, "paid"),  # 140k x 75%
    ("in-tertiary", IN, TERTIARY, [(A, 200_000)], (0, 0), 65_000, 100_000, "paid"),  # 100k x 65%
    # deductible crossed within one invoice
    ("below-deductible", OUT, TERTIARY, [(A, 9_999)], (0, 0), 0, 9_999, "below_deductible"),
    ("at-deductible", OUT, TERTIARY, [(A, 10_000)], (0, 0), 0, 10_000, "below_deductible"),
    ("1-fen-over", OUT, TERTIARY, [(A, 10_001)], (0, 0), 1, 10_000, "paid"),  # 0.6 -> 1
    ("half-fen-up", OUT, TOWNSHIP, [(A, 10_005)], (0, 0), 5, 10_000, "paid"),  # 4.5 -> 5
    ("round-down", OUT, TOWNSHIP, [(A, 10_004)], (0, 0), 4, 10_000, "paid"),  # 3.6 -> 4
    ("round-5.4", OUT, TOWNSHIP, [(A, 10_006)], (0, 0), 5, 10_000, "paid"),  # 5.4 -> 5
    # deductible partly met earlier in the year: 4,000 left; 26,000 x 60%
    ("deductible-partly-met", OUT, TERTIARY, [(A, 30_000)], (6_000, 0), 15_600, 4_000, "paid"),
    ("deductible-met", OUT, TERTIARY, [(A, 30_000)], (10_000, 0), 18_000, 0, "paid"),
    # B: 30,000 - 10% share 3,000 = 27,000; - 10,000 = 17,000 x 60%
    ("b-share", OUT, TERTIARY, [(B, 30_000)], (0, 0), 10_200, 10_000, "paid"),
    # A 20,000 + B 10,000 (9,000 counted) + C + self excluded = 29,000 - 10,000 = 19,000 x 70%
    (
        "mixed",
        OUT,
        SECONDARY,
        [(A, 20_000), (B, 10_000), (C, 5_000), (SELF, 5_000)],
        (0, 0),
        13_300,
        10_000,
        "paid",
    ),
    (
        "only-c-and-self",
        OUT,
        SECONDARY,
        [(C, 5_000), (SELF, 5_000)],
        (0, 0),
        0,
        0,
        "nothing_in_scope",
    ),
    # outpatient pool cap 50,000; deductible met, the invoice gives 30,000 x 60% = 18,000
    ("cap-exactly-at", OUT, TERTIARY, [(A, 30_000)], (10_000, 32_000), 18_000, 0, "paid"),
    ("cap-just-over", OUT, TERTIARY, [(A, 30_000)], (10_000, 32_001), 17_999, 0, "paid"),
    ("cap-left-10000", OUT, TERTIARY, [(A, 30_000)], (10_000, 40_000), 10_000, 0, "paid"),
    ("cap-reached", OUT, TERTIARY, [(A, 30_000)], (10_000, 50_000), 0, 0, "cap_reached"),
    # same lines, outpatient vs inpatient at a secondary hospital:
    # outpatient 90,000 x 70% = 63,000, capped at 50,000; inpatient 40,000 x 75% = 30,000
    ("visit-outpatient", OUT, SECONDARY, [(A, 100_000)], (0, 0), 50_000, 10_000, "paid"),
    ("visit-inpatient", IN, SECONDARY, [(A, 100_000)], (0, 0), 30_000, 60_000, "paid"),
]


@pytest.mark.parametrize(
    ("visit", "level", "lines", "usage", "amount", "deductible", "reason"),
    [row[1:] for row in BASIC_TABLE],
    ids=[row[0] for row in BASIC_TABLE],
)
def test_basic_policy_arithmetic(
    visit: VisitType,
    level: HospitalLevel,
    lines: list[tuple[ItemClass, int]],
    usage: tuple[int, int],
    amount: int,
    deductible: int,
    reason: str,
) -> None:
    claim = invoice(*(line(k, fen) for k, fen in lines), visit=visit, level=level)
    acc = accumulator("basic").with_pool(visit.value, PoolUsage(*usage))
    result = adjudicate(POLICIES["basic"], claim, citizen(), acc, 0)
    assert (result.amount_fen, result.deductible_applied_fen, result.reason_code) == (
        amount,
        deductible,
        reason,
    )
    assert result.status is Status.APPROVED
    pool = result.accumulator.pool(visit.value)
    assert pool.deductible_used_fen == usage[0] + deductible
    assert pool.paid_fen == usage[1] + amount


def test_cap_exactly_at_leaves_zero() -> None:
    claim = invoice(line(A, 30_000))
    acc = accumulator("basic", outpatient=(10_000, 32_000))  # 18,000 left = 18,000 due
    result = adjudicate(POLICIES["basic"], claim, citizen(), acc, 0)
    assert (result.amount_fen, result.cap_cut_fen) == (18_000, 0)
    assert result.accumulator.pool("outpatient").paid_fen == 50_000
    again = adjudicate(POLICIES["basic"], claim, citizen(), result.accumulator, 0)
    assert (again.amount_fen, again.reason_code, again.cap_cut_fen) == (0, "cap_reached", 18_000)


def test_annual_cap_over_both_pools() -> None:
    # Pool cap left 1,000,000 - 990,000 = 10,000; annual left 1,000,000 - 995,000 = 5,000.
    claim = invoice(line(A, 200_000), visit=IN, level=TERTIARY)
    acc = accumulator("basic", inpatient=(100_000, 990_000), outpatient=(10_000, 5_000))
    result = adjudicate(POLICIES["basic"], claim, citizen(), acc, 0)
    assert (result.before_caps_fen, result.amount_fen, result.cap_cut_fen) == (
        130_000,
        5_000,
        125_000,
    )
    assert [s.code for s in result.steps].count("cap") == 2


def test_deductible_across_two_invoices_of_the_same_year() -> None:
    first = invoice(line(A, 6_000), reference="33082501-0000000001")
    second = invoice(line(A, 30_000), reference="33082501-0000000002")
    one = adjudicate(POLICIES["basic"], first, citizen(), accumulator("basic"), 0)
    assert (one.amount_fen, one.deductible_applied_fen, one.reason_code) == (
        0,
        6_000,
        "below_deductible",
    )
    two = adjudicate(POLICIES["basic"], second, citizen(), one.accumulator, 0)
    # 4,000 of the deductible left: (30,000 - 4,000) x 60% = 15,600
    assert (two.amount_fen, two.deductible_applied_fen) == (15_600, 4_000)
    assert two.accumulator.pool("outpatient").deductible_used_fen == 10_000


def test_b_class_share_is_rounded_half_up_per_line() -> None:
    # 12,345 x 10% = 1,234.5 -> 1,235 self-paid first; 11,110 counted. Two such lines: 2,470.
    claim = invoice(line(B, 12_345), line(B, 12_345), line(A, 100))
    result = adjudicate(POLICIES["basic"], claim, citizen(), accumulator("basic"), 0)
    first = result.lines[0]
    assert (first.self_share_fen, first.in_policy_fen, first.excluded_fen) == (1_235, 11_110, 0)
    category = {c.item_class: c for c in result.categories}
    assert (category[B].amount_fen, category[B].self_share_fen, category[B].in_policy_fen) == (
        24_690,
        2_470,
        22_220,
    )
    # in policy 22,220 + 100 = 22,320 - 10,000 = 12,320 x 60% = 7,392
    assert (result.in_policy_fen, result.amount_fen) == (22_320, 7_392)
    assert first.note.code == "line_self_pay_share"
    assert "1,235.00" not in first.note.en and "12.35" in first.note.en


@pytest.mark.parametrize(
    ("claimed_at", "status", "reason"),
    [
        # issued 2025-03-10 (CST); 365 days -> last day 2026-03-10
        (datetime(2026, 3, 9, 12, 0, tzinfo=CST), Status.APPROVED, "paid"),
        (datetime(2026, 3, 10, 23, 59, 59, tzinfo=CST), Status.APPROVED, "paid"),
        (datetime(2026, 3, 11, 0, 0, tzinfo=CST), Status.REJECTED, "deadline_passed"),
        # 16:30 UTC on the 10th is 00:30 on the 11th in China
        (datetime(2026, 3, 10, 16, 30, tzinfo=UTC), Status.REJECTED, "deadline_passed"),
        (datetime(2026, 3, 10, 15, 59, tzinfo=UTC), Status.APPROVED, "paid"),
    ],
    ids=["day-before", "day-of", "day-after", "day-after-in-utc", "day-of-in-utc"],
)
def test_deadline(claimed_at: datetime, status: Status, reason: str) -> None:
    claim = invoice(line(A, 30_000), claimed_at=claimed_at)
    before = accumulator("basic")
    result = adjudicate(POLICIES["basic"], claim, citizen(), before, 0)
    assert (result.status, result.reason_code) == (status, reason)
    assert result.amount_fen == (12_000 if status is Status.APPROVED else 0)
    assert result.last_claim_day.isoformat() == "2026-03-10"
    if status is Status.REJECTED:
        assert result.accumulator == before  # a rejected claim uses no deductible
        assert "2026-03-10" in result.reason.zh and "365" in result.reason.en


# (id, [(class, fen)], already paid by earlier payers, pool usage, amount, reason)
CRITICAL_TABLE = [
    # in policy 500,000 - 200,000 paid = 300,000; - 100,000 threshold = 200,000 x 50%
    ("above-threshold", [(A, 500_000)], 200_000, (0, 0), 100_000, "paid"),
    # threshold partly met (50,000 left): 250,000 x 50%
    ("threshold-partly-met", [(A, 500_000)], 200_000, (50_000, 0), 125_000, "paid"),
    # 80,000 left to the citizen is under the 100,000 threshold
    ("below-threshold", [(A, 280_000)], 200_000, (0, 0), 0, "below_deductible"),
    # B: 100,000 -> 90,000 in policy; - 40,000 paid = 50,000; threshold met: x 50%
    ("b-share", [(B, 100_000)], 40_000, (100_000, 0), 25_000, "paid"),
    # cap 300,000, 290,000 paid: 10,000 left of 100,000
    ("cap", [(A, 500_000)], 200_000, (0, 290_000), 10_000, "paid"),
    # C is not in the critical-illness scope
    ("class-c-only", [(C, 500_000)], 0, (0, 0), 0, "nothing_in_scope"),
    # basic paid the whole in-policy part
    ("nothing-left", [(A, 100_000)], 100_000, (100_000, 0), 0, "nothing_left"),
]


@pytest.mark.parametrize(
    ("lines", "paid", "usage", "amount", "reason"),
    [row[1:] for row in CRITICAL_TABLE],
    ids=[row[0] for row in CRITICAL_TABLE],
)
def test_critical_illness_threshold(
    lines: list[tuple[ItemClass, int]],
    paid: int,
    usage: tuple[int, int],
    amount: int,
    reason: str,
) -> None:
    claim = invoice(*(line(k, fen) for k, fen in lines), visit=IN)
    acc = accumulator("critical", all=usage)
    result = adjudicate(POLICIES["critical"], claim, citizen(), acc, paid)
    assert (result.amount_fen, result.reason_code) == (amount, reason)


@pytest.mark.parametrize(
    ("flags", "status", "amount", "reason"),
    [
        # in policy 300,000 - 250,000 paid = 50,000 x 70%
        (frozenset({"low_income"}), Status.APPROVED, 35_000, "paid"),
        (frozenset({"low_income", "veteran"}), Status.APPROVED, 35_000, "paid"),
        (frozenset(), Status.REJECTED, 0, "not_eligible"),
        (frozenset({"veteran"}), Status.REJECTED, 0, "not_eligible"),
    ],
    ids=["low-income", "low-income-and-more", "no-flags", "other-flag"],
)
def test_assistance_only_for_eligible_citizens(
    flags: frozenset[str], status: Status, amount: int, reason: str
) -> None:
    claim = invoice(line(A, 300_000), visit=IN)
    result = adjudicate(
        POLICIES["assistance"], claim, citizen(flags=flags), accumulator("assistance"), 250_000
    )
    assert (result.status, result.amount_fen, result.reason_code) == (status, amount, reason)


# Commercial: A and B (no share) in policy at 80%, C out of policy at 50%, self excluded,
# deductible 20,000, in-policy part first.
COMMERCIAL_TABLE = [
    # in policy 400,000 - 250,000 paid = 150,000 - 20,000 = 130,000 x 80% = 104,000;
    # out of policy 50,000 x 50% = 25,000
    ("from-remainder", 250_000, 129_000, (150_000, 50_000)),
    # paid 420,000 > in policy: 20,000 taken from C: 30,000 - 20,000 deductible = 10,000 x 50%
    ("paid-beyond-in-policy", 420_000, 5_000, (0, 30_000)),
    # nothing paid yet: 400,000 - 20,000 = 380,000 x 80% = 304,000 + 25,000
    ("first-payer", 0, 329_000, (400_000, 50_000)),
    # everything but self-pay paid: in policy and C exhausted
    ("only-self-left", 450_000, 0, (0, 0)),
]


@pytest.mark.parametrize(
    ("paid", "amount", "bases"),
    [row[1:] for row in COMMERCIAL_TABLE],
    ids=[row[0] for row in COMMERCIAL_TABLE],
)
def test_commercial_pays_from_the_remainder(paid: int, amount: int, bases: tuple[int, int]) -> None:
    claim = invoice(
        line(A, 300_000), line(B, 100_000), line(C, 50_000), line(SELF, 50_000), visit=IN
    )
    result = adjudicate(POLICIES["commercial"], claim, citizen(), accumulator("commercial"), paid)
    assert result.amount_fen == amount
    assert (result.base_fen, result.out_of_policy_base_fen) == bases
    assert result.amount_fen <= claim.total_fen - paid


def test_remainder_limit_when_lines_exceed_the_total() -> None:
    # Lines say 100,000 but the invoice total is 20,000 (the audit blocks this): township
    # 90,000 x 90% = 81,000, cut by the 50,000 outpatient cap, then by the 20,000 unpaid.
    claim = invoice(line(A, 100_000), level=TOWNSHIP, total_fen=20_000)
    result = adjudicate(POLICIES["basic"], claim, citizen(), accumulator("basic"), 0)
    assert (result.before_caps_fen, result.amount_fen) == (81_000, 20_000)
    assert [s.code for s in result.steps][-2:] == ["cap", "remainder"]


CHAIN_LINES = [(A, 300_000), (B, 100_000), (C, 50_000), (SELF, 50_000)]


@pytest.mark.parametrize(
    ("flags", "amounts"),
    [
        # basic: in policy 300,000 + 90,000 = 390,000 - 100,000 = 290,000 x 65% = 188,500
        # critical: 390,000 - 188,500 = 201,500 - 100,000 = 101,500 x 50% = 50,750
        # assistance: 390,000 - 239,250 = 150,750 x 70% = 105,525, capped at 100,000
        # commercial: 400,000 - 339,250 = 60,750 - 20,000 = 40,750 x 80% = 32,600
        #             + C 50,000 x 50% = 25,000 -> 57,600
        (frozenset({"low_income"}), [188_500, 50_750, 100_000, 57_600]),
        # not eligible for assistance: commercial 400,000 - 239,250 = 160,750 - 20,000
        # = 140,750 x 80% = 112,600 + 25,000 = 137,600
        (frozenset(), [188_500, 50_750, 0, 137_600]),
    ],
    ids=["low-income", "not-eligible"],
)
def test_chain_basic_critical_assistance_commercial(
    flags: frozenset[str], amounts: list[int]
) -> None:
    claim = invoice(*(line(k, fen) for k, fen in CHAIN_LINES), visit=IN, level=TERTIARY)
    order = [POLICIES[p] for p in ("basic", "critical", "assistance", "commercial")]
    results = chain_payers(order, claim, citizen(flags=flags), {})
    assert [r.amount_fen for r in results] == amounts
    assert [r.already_paid_fen for r in results] == [
        0,
        amounts[0],
        amounts[0] + amounts[1],
        sum(amounts[:3]),
    ]
    assert sum(amounts) <= claim.total_fen


def test_chain_uses_and_returns_accumulators() -> None:
    claim = invoice(line(A, 30_000))
    given = {"basic": accumulator("basic", outpatient=(10_000, 0))}
    (result,) = chain_payers([POLICIES["basic"]], claim, citizen(), given)
    assert result.amount_fen == 18_000
    assert given["basic"].pool("outpatient").paid_fen == 0  # not mutated
    assert result.accumulator.pool("outpatient").paid_fen == 18_000


def test_chain_refuses_a_payer_twice() -> None:
    with pytest.raises(DuplicatePayer, match="'basic' appears twice"):
        chain_payers([POLICIES["basic"], POLICIES["basic"]], invoice(line(A, 1)), citizen(), {})


def test_accumulator_of_another_payer_or_year_is_refused() -> None:
    claim = invoice(line(A, 30_000))
    with pytest.raises(AccumulatorMismatch, match="payer 'critical' year 2025"):
        adjudicate(POLICIES["basic"], claim, citizen(), accumulator("critical"), 0)
    with pytest.raises(AccumulatorMismatch, match="year 2024"):
        adjudicate(POLICIES["basic"], claim, citizen(), accumulator("basic", year=2024), 0)


def test_policy_year_is_the_issue_year_in_china() -> None:
    # 2024-12-31 17:00 UTC is 2025-01-01 01:00 in China: the 2025 accumulator applies.
    issued = datetime(2024, 12, 31, 17, 0, tzinfo=UTC)
    claim = invoice(line(A, 30_000), issued_at=issued)
    assert claim.policy_year == 2025
    assert adjudicate(POLICIES["basic"], claim, citizen(), accumulator("basic"), 0).amount_fen


def test_inputs_are_checked() -> None:
    with pytest.raises(ClaimInputInvalid, match="claimed_at"):
        adjudicate(
            POLICIES["basic"], invoice(line(A, 1), claimed_at=None), citizen(), accumulator("basic")
        )
    with pytest.raises(ClaimInputInvalid, match="already_paid_fen"):
        adjudicate(POLICIES["basic"], invoice(line(A, 1)), citizen(), accumulator("basic"), -1)
    with pytest.raises(ClaimInputInvalid, match="timezone-aware"):
        invoice(line(A, 1), issued_at=datetime(2025, 3, 10, 15, 0))
    with pytest.raises(ClaimInputInvalid, match="amount_fen: must not be negative"):
        line(A, -1, unit_price_fen=100)


def test_explanation_reads_in_both_languages() -> None:
    claim = invoice(line(A, 20_000), line(B, 10_000), line(C, 5_000), level=SECONDARY)
    result = adjudicate(POLICIES["basic"], claim, citizen(), accumulator("basic"), 0)
    codes = [n.code for n in result.explanation]
    assert codes == [
        "deadline_ok",
        "category",
        "category",
        "category",
        "deductible",
        "ratio",
        "line_in_policy",
        "line_self_pay_share",
        "line_excluded",
        "paid",
    ]
    ratio = next(n for n in result.steps if n.code == "ratio")
    # 29,000 - 10,000 = 19,000 x 70% = 13,300
    assert ratio.en == (
        "Ratio at a secondary hospital 70%: CNY 190.00 × 70% = 133.00 (rounded half up to the fen)."
    )
    assert ratio.zh.startswith("二级医院支付比例 70%：190.00 元 × 70% = 133.00 元")
    assert result.reason.zh == "测试基本医保支付 133.00 元。"
    for n in result.explanation:
        assert n.zh and n.en and "{" not in n.zh + n.en
