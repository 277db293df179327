"""Adjudication on the till's split: the scheme chooses the rules, the till is never paid again,
the patient's shares are counted in cash. Every expected fen is worked out by hand.

Test policies with their sections (tests/claims/factories.py, ``till_policies``):
basic employees outpatient deductible 10,000, 80%; inpatient 20,000, 90%; residents inherit the
top level (outpatient 10,000, tertiary 60%); both settled at the till by the fund.
critical employees: copay only, threshold 10,000, 50%; residents: copay and deductible share,
threshold 100,000, 50%; both settled at the till by other funds.
assistance (low income only): all three shares, 70%, no deductible.
commercial employees and residents: copay and deductible share 80%, self-pay 50%, deductible
20,000; the uninsured: all three at 50%, no deductible.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from claims import (
    Basis,
    ClaimInputInvalid,
    HospitalLevel,
    ItemClass,
    PoolUsage,
    Scheme,
    Share,
    Status,
    TillSplit,
    VisitType,
    adjudicate,
    bundled_policies,
    chain_payers,
    share_results,
)
from claims.policy import Coverage
from tests.claims.factories import (
    accumulator,
    citizen,
    invoice,
    line,
    policies,
    till,
    till_policies,
)

A = ItemClass.A
EMPLOYEE, RESIDENT, NONE = Scheme.EMPLOYEE, Scheme.RESIDENT, Scheme.NONE
OUT, IN = VisitType.OUTPATIENT, VisitType.INPATIENT
POLICIES = till_policies()
LOW_INCOME = citizen(flags=frozenset({"low_income"}))


# -- the input ---------------------------------------------------------------------------------

SPLIT = {
    "fund_fen": 600,
    "account_fen": 100,
    "other_fen": 50,
    "cash_fen": 250,
    "copay_fen": 200,
    "deductible_fen": 50,
    "self_pay_fen": 100,
}


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"fund_fen": -1}, "fund_fen", "must not be negative, got -1"),
        ({"cash_fen": 2.5}, "cash_fen", "must be an integer number of fen"),
        ({"other_fen": True}, "other_fen", "must be an integer number of fen"),
        (
            {"self_pay_fen": 90},
            "till",
            r"copay \+ deductible \+ self_pay = 340 fen must equal account \+ cash = 350 fen",
        ),
        (
            {"account_fen": 0},
            "till",
            r"copay \+ deductible \+ self_pay = 350 fen must equal account \+ cash = 250 fen",
        ),
    ],
    ids=["negative", "float", "bool", "shares-short", "account-missing"],
)
def test_the_split_is_checked(changes: dict[str, object], field: str, reason: str) -> None:
    with pytest.raises(ClaimInputInvalid, match=reason) as caught:
        TillSplit(**{**SPLIT, **changes})  # type: ignore[arg-type]
    assert caught.value.field == field


def test_the_split_adds_up_to_the_invoice_total() -> None:
    split = TillSplit(**SPLIT)
    assert (split.total_fen, split.paid_at_till_fen, split.shares_fen) == (1_000, 750, 350)
    invoice(line(A, 1_000), scheme=EMPLOYEE, till=split)  # total taken from the till: fine
    with pytest.raises(ClaimInputInvalid, match="= 1000 fen must equal the invoice total 999"):
        invoice(line(A, 1_000), scheme=EMPLOYEE, till=split, total_fen=999)


@pytest.mark.parametrize(
    ("split", "ok"),
    [
        (till(fund=100, self_pay=100), False),
        (till(account=10, self_pay=100), False),
        (till(other=100, self_pay=100), True),  # e.g. a charity, paid at the till
        (till(self_pay=100), True),
    ],
    ids=["fund", "account", "other", "cash-only"],
)
def test_the_uninsured_have_no_fund_or_account(split: TillSplit, ok: bool) -> None:
    if ok:
        assert invoice(line(A, 1), scheme=NONE, till=split).till == split
    else:
        with pytest.raises(ClaimInputInvalid, match="scheme 'none'") as caught:
            invoice(line(A, 1), scheme=NONE, till=split)
        assert caught.value.field == "till"


def test_scheme_given_as_text() -> None:
    claim = invoice(line(A, 1), scheme="resident", till=till(self_pay=1))  # type: ignore[arg-type]
    assert claim.scheme is RESIDENT
    with pytest.raises(ValueError, match="'retired'"):
        invoice(line(A, 1), scheme="retired")  # type: ignore[arg-type]


# -- which rules -------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", list(Scheme))
def test_without_a_till_adjudication_is_as_before_whatever_the_scheme(scheme: Scheme) -> None:
    lines = (line(A, 300_000), line(ItemClass.B, 100_000), line(ItemClass.C, 50_000))
    before = chain_payers(
        list(policies().values()), invoice(*lines, visit=IN), LOW_INCOME, {}
    )  # the policies without sections
    now = chain_payers(
        list(POLICIES.values()), invoice(*lines, visit=IN, scheme=scheme), LOW_INCOME, {}
    )
    assert [replace(r, scheme=Scheme.NONE) for r in now] == before
    assert [r.pool for r in now] == ["inpatient", "all", "all", "all"]


@pytest.mark.parametrize(
    ("payer", "scheme", "served_en"),
    [
        ("basic", NONE, "members of the employees' basic medical insurance; members of the "
         "residents' basic medical insurance"),
        ("critical", NONE, "members of the employees'"),
        ("assistance", NONE, "members of the employees'"),
    ],
    ids=["basic", "critical", "assistance"],
)  # fmt: skip
def test_a_payer_without_a_section_for_the_scheme_rejects(
    payer: str, scheme: Scheme, served_en: str
) -> None:
    claim = invoice(line(A, 100_000), scheme=scheme, till=till(self_pay=100_000))
    before = accumulator(payer)
    result = adjudicate(POLICIES[payer], claim, LOW_INCOME, before)
    assert (result.status, result.amount_fen, result.reason_code) == (
        Status.REJECTED,
        0,
        "scheme_not_served",
    )
    assert result.accumulator == before and result.pool is None
    assert "patients without basic medical insurance" in result.reason.en
    assert served_en in result.reason.en
    assert "未参加基本医疗保险的人员" in result.reason.zh
    assert "职工基本医疗保险参保人员" in result.reason.zh


def test_a_policy_without_sections_serves_no_invoice_with_a_split() -> None:
    claim = invoice(line(A, 100), scheme=EMPLOYEE, till=till(fund=0, copay=100))
    result = adjudicate(policies()["commercial"], claim, citizen(), accumulator("commercial"))
    assert result.reason_code == "scheme_not_served"
    assert result.reason.en.endswith("(it covers: nobody).")
    assert "（本支付方支付：无）" in result.reason.zh


def test_a_scheme_counts_in_its_own_pools() -> None:
    # Employees: (30,000 - 10,000) x 80% = 16,000 in pool employee.outpatient. Residents, on
    # the returned totals: their own deductible is still whole: (30,000 - 10,000) x 60%.
    employee = invoice(line(A, 30_000), scheme=EMPLOYEE, till=till(self_pay=30_000))
    resident = replace(employee, scheme=RESIDENT)
    first = adjudicate(POLICIES["basic"], employee, citizen(), accumulator("basic"))
    assert (first.amount_fen, first.pool, first.basis) == (16_000, "employee.outpatient", "lines")
    assert first.accumulator.pool("employee.outpatient").deductible_used_fen == 10_000
    second = adjudicate(POLICIES["basic"], resident, citizen(), first.accumulator)
    assert (second.amount_fen, second.pool, second.deductible_applied_fen) == (
        12_000,
        "resident.outpatient",
        10_000,
    )
    assert second.accumulator.pool("employee.outpatient") == first.accumulator.pool(
        "employee.outpatient"
    )


# -- the till is never paid again --------------------------------------------------------------


@pytest.mark.parametrize(
    ("payer", "split", "channel_en"),
    [
        ("basic", till(fund=1, self_pay=30_000), "The pooled fund already paid CNY 0.01"),
        ("critical", till(other=5_000, copay=60_000), "Other funds"),
    ],
    ids=["fund-settles-basic", "other-settles-critical"],
)
def test_a_payers_own_channel_at_the_till_settles_it(
    payer: str, split: TillSplit, channel_en: str
) -> None:
    claim = invoice(line(A, 30_000), scheme=EMPLOYEE, till=split)
    before = accumulator(payer)
    result = adjudicate(POLICIES[payer], claim, citizen(), before)
    assert (result.status, result.amount_fen, result.reason_code) == (
        Status.APPROVED,
        0,
        "settled_at_till",
    )
    assert result.accumulator == before  # nothing counts towards the year
    assert [s.code for s in result.steps] == ["scheme", "deadline_ok", "till"]
    assert result.reason.en.startswith(channel_en)
    assert "不再重复支付" in result.reason.zh


def test_other_funds_at_the_till_do_not_settle_a_payer_without_that_channel() -> None:
    # commercial has no till channel: other funds only count as paid. Copay 60,000 in policy,
    # 20,000 deductible: 40,000 x 80% = 32,000.
    claim = invoice(line(A, 65_000), scheme=EMPLOYEE, till=till(other=5_000, copay=60_000))
    result = adjudicate(POLICIES["commercial"], claim, citizen(), accumulator("commercial"))
    assert (result.amount_fen, result.paid_at_till_fen) == (32_000, 5_000)


# (id, lines of class A, split, already paid by claims, visit, amount, base, reason).
LINES_TABLE = [
    # a manual claim (零星报销), the fund paid nothing: (30,000 - 10,000) x 80%
    ("manual-claim", 30_000, till(self_pay=30_000), 0, OUT, 16_000, 30_000, "paid"),
    # account 5,000 and other 3,000 count as paid: 30,000 - 8,000 = 22,000 - 10,000 = 12,000
    # x 80% = 9,600 (cash 22,000)
    ("till-counts-as-paid", 30_000, till(account=5_000, other=3_000, self_pay=27_000), 0, OUT,
     9_600, 22_000, "paid"),
    # lines above the total (the audit blocks it): inpatient (100,000 - 20,000) x 90% = 72,000,
    # cut to the 50,000 cash
    ("cash-limit", 100_000, till(self_pay=50_000), 0, IN, 50_000, 100_000, "paid"),
    # and after 10,000 of earlier claims: (90,000 - 20,000) x 90% = 63,000, cut to 40,000
    ("cash-limit-after-claims", 100_000, till(self_pay=50_000), 10_000, IN, 40_000, 90_000,
     "paid"),
    # the account's 20,000 is not cash: (100,000 - 20,000 - 20,000) x 90% = 54,000, cut to the
    # 30,000 cash (50,000 total)
    ("cash-limit-not-account", 100_000, till(account=20_000, self_pay=50_000), 0, IN, 30_000,
     80_000, "paid"),
    # earlier claims took all the cash
    ("no-cash-left", 30_000, till(self_pay=30_000), 30_000, OUT, 0, 0, "nothing_left"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("lines_fen", "split", "paid", "visit", "amount", "base", "reason"),
    [row[1:] for row in LINES_TABLE],
    ids=[row[0] for row in LINES_TABLE],
)
def test_basic_counts_the_lines_after_the_till(
    lines_fen: int,
    split: TillSplit,
    paid: int,
    visit: VisitType,
    amount: int,
    base: int,
    reason: str,
) -> None:
    claim = invoice(line(A, lines_fen), visit=visit, scheme=EMPLOYEE, till=split)
    result = adjudicate(POLICIES["basic"], claim, citizen(), accumulator("basic"), paid)
    assert (result.amount_fen, result.base_fen, result.reason_code) == (amount, base, reason)
    assert result.basis is Basis.LINES and result.shares == ()
    assert result.amount_fen <= max(0, split.cash_fen - paid)
    if result.cap_cut_fen and result.before_caps_fen > split.cash_fen - paid:
        assert result.steps[-1].code == "remainder_cash"
        assert "cash not reimbursed yet" in result.steps[-1].en


# -- the patient's shares ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("split", "paid", "expected"),
    [
        # (account, earlier, left) per share: copay 500, deductible 100, self-pay 400
        (till(copay=500, deductible=100, self_pay=400), 0,
         [(0, 0, 500), (0, 0, 100), (0, 0, 400)]),
        # the account fills the copay, then the deductible share
        (till(account=550, copay=500, deductible=100, self_pay=400), 0,
         [(500, 0, 0), (50, 0, 50), (0, 0, 400)]),
        # earlier claims fill the cash left, in the same order
        (till(account=300, copay=500, deductible=100, self_pay=400), 250,
         [(300, 200, 0), (0, 50, 50), (0, 0, 400)]),
        # earlier claims beyond the cash go nowhere
        (till(account=300, copay=500, deductible=100, self_pay=400), 10_000,
         [(300, 200, 0), (0, 100, 0), (0, 400, 0)]),
    ],
    ids=["cash-only", "account-fills-copay-first", "earlier-after-account", "earlier-beyond-cash"],
)  # fmt: skip
def test_account_then_earlier_claims_fill_the_shares_in_order(
    split: TillSplit, paid: int, expected: list[tuple[int, int, int]]
) -> None:
    coverage = dict.fromkeys(Share, Coverage.IN_POLICY)
    shares = share_results(split, paid, coverage)
    assert [s.share for s in shares] == [Share.COPAY, Share.DEDUCTIBLE, Share.SELF_PAY]
    assert [(s.account_fen, s.earlier_fen, s.left_fen) for s in shares] == expected
    assert sum(s.account_fen for s in shares) == split.account_fen
    assert sum(s.left_fen for s in shares) == max(0, split.cash_fen - paid)


# (id, payer, scheme, split, already paid by claims, deductible used, amount, base, out base,
#  reason); every split here: copay 50,000, deductible 10,000, self-pay 40,000 unless given.
SHARES = {"copay": 50_000, "deductible": 10_000, "self_pay": 40_000}
SHARES_TABLE = [
    # base 60,000 - 20,000 deductible = 40,000 x 80% = 32,000; self-pay 40,000 x 50% = 20,000
    ("commercial", "commercial", EMPLOYEE, till(**SHARES), 0, 0, 52_000, 60_000, 40_000,
     "paid"),
    # account 30,000 fills the copay first: base 30,000 - 20,000 = 10,000 x 80% + 20,000
    ("account-first", "commercial", EMPLOYEE, till(account=30_000, **SHARES), 0, 0, 28_000,
     30_000, 40_000, "paid"),
    # account 55,000: copay gone, 5,000 of the deductible share left; the deductible takes it
    # and 15,000 of the self-pay: 25,000 x 50% = 12,500
    ("account-past-copay", "commercial", EMPLOYEE, till(account=55_000, **SHARES), 0, 0,
     12_500, 5_000, 40_000, "paid"),
    # account 30,000 then 25,000 of earlier claims: the same shares left as above
    ("earlier-after-account", "commercial", EMPLOYEE, till(account=30_000, **SHARES), 25_000,
     0, 12_500, 5_000, 40_000, "paid"),
    ("earlier-took-all", "commercial", EMPLOYEE, till(**SHARES), 100_000, 0, 0, 0, 0,
     "nothing_left"),
    # deductible met this year: 60,000 x 80% + 40,000 x 50%
    ("deductible-met", "commercial", RESIDENT, till(**SHARES), 0, 20_000, 68_000, 60_000,
     40_000, "paid"),
    # self-pay only: 40,000 - 20,000 deductible = 20,000 x 50%
    ("self-pay-only", "commercial", EMPLOYEE, till(self_pay=40_000), 0, 0, 10_000, 0, 40_000,
     "paid"),
    # the uninsured: all three at 50%, no deductible
    ("uninsured", "commercial", NONE, till(self_pay=100_000), 0, 0, 50_000, 100_000, 0, "paid"),
    # employees' large-amount subsidy: the copay only, 50,000 - 10,000 threshold = 40,000 x 50%
    ("copay-only", "critical", EMPLOYEE, till(**SHARES), 0, 0, 20_000, 50_000, 0, "paid"),
    ("no-copay", "critical", EMPLOYEE, till(deductible=10_000, self_pay=40_000), 0, 0, 0, 0, 0,
     "nothing_in_scope"),
    ("copay-from-account", "critical", EMPLOYEE, till(account=50_000, **SHARES), 0, 0, 0, 0, 0,
     "nothing_left"),
    # residents' critical illness: copay 150,000 + deductible share 10,000 - 100,000 = 60,000
    # x 50%
    ("resident-copay-and-deductible", "critical", RESIDENT,
     till(copay=150_000, deductible=10_000, self_pay=40_000), 0, 0, 30_000, 160_000, 0, "paid"),
    ("resident-below-threshold", "critical", RESIDENT, till(**SHARES), 0, 0, 0, 60_000, 0,
     "below_deductible"),
    # assistance, all three in policy: 30,000 paid fills the copay: 20,000 + 10,000 + 40,000
    # = 70,000 x 70%
    ("assistance", "assistance", RESIDENT, till(**SHARES), 30_000, 0, 49_000, 70_000, 0,
     "paid"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("payer", "scheme", "split", "paid", "used", "amount", "base", "out_base", "reason"),
    [row[1:] for row in SHARES_TABLE],
    ids=[row[0] for row in SHARES_TABLE],
)
def test_payers_count_the_shares_left_in_cash(
    payer: str,
    scheme: Scheme,
    split: TillSplit,
    paid: int,
    used: int,
    amount: int,
    base: int,
    out_base: int,
    reason: str,
) -> None:
    claim = invoice(line(A, split.total_fen), visit=IN, scheme=scheme, till=split)
    policy = POLICIES[payer]
    rules = policy.rules_for(claim)
    assert rules is not None
    pool = rules.benefit_for(IN).pool
    acc = accumulator(payer).with_pool(pool, PoolUsage(used, 0))
    result = adjudicate(policy, claim, LOW_INCOME, acc, paid)
    assert (result.amount_fen, result.base_fen, result.out_of_policy_base_fen) == (
        amount,
        base,
        out_base,
    )
    assert result.reason_code == reason
    assert result.basis is Basis.SHARES and result.pool == pool == f"{scheme.value}.all"
    assert result.categories == () and result.lines == ()
    assert result.accumulator.pool(pool).paid_fen == amount
    for share in result.shares:
        assert share.amount_fen == share.account_fen + share.earlier_fen + share.left_fen


# -- explanations ------------------------------------------------------------------------------


def test_notes_name_the_till_split_and_each_share() -> None:
    split = till(fund=90_000, account=30_000, other=0, **SHARES)
    claim = invoice(line(A, split.total_fen), visit=IN, scheme=EMPLOYEE, till=split)
    result = adjudicate(POLICIES["commercial"], claim, citizen(), accumulator("commercial"))
    assert [n.code for n in result.explanation] == [
        "scheme",
        "deadline_ok",
        "till",
        "share",
        "share",
        "share",
        "earlier_payers_till",
        "deductible",
        "ratio_flat",
        "out_of_policy_ratio",
        "paid",
    ]
    till_note = result.steps[2]
    assert till_note.en == (
        "At the till: pooled fund CNY 900.00, personal account 300.00, other funds 0.00, "
        "personal cash 700.00, total 1,900.00; the patient's shares: co-payment 500.00, "
        "below-deductible share 100.00, self-pay 400.00. The 1,200.00 paid at the till is not "
        "paid again; claims together reimburse at most the 700.00 paid in cash."
    )
    assert till_note.zh.startswith(
        "医院结算：统筹基金支付 900.00 元，个人账户支付 300.00 元，其他支付 0.00 元，"
        "个人现金支付 700.00 元，合计 1,900.00 元；其中个人自付 500.00 元，个人自负 100.00 元，"
        "个人自费 400.00 元。"
    )
    copay = result.steps[3]
    assert copay.en == (
        "Co-payment CNY 500.00: 300.00 paid from the personal account, 0.00 reimbursed by "
        "earlier payers, 200.00 paid in cash and not reimbursed yet; counted at the ratio."
    )
    assert copay.zh == (
        "个人自付 500.00 元：个人账户已支付 300.00 元，此前报销 0.00 元，"
        "个人现金尚未报销 200.00 元，按支付比例计付。"
    )
    self_pay = result.steps[5]
    assert self_pay.zh.startswith("个人自费 400.00 元") and "目录外比例" in self_pay.zh
    assert result.steps[0].zh == "参保类型：职工基本医疗保险，按测试惠民保的规定计算。"
    for n in result.explanation:
        assert n.zh and n.en and "{" not in n.zh + n.en


def test_a_share_of_zero_has_no_note() -> None:
    claim = invoice(line(A, 100), scheme=NONE, till=till(self_pay=100))
    result = adjudicate(POLICIES["commercial"], claim, citizen(), accumulator("commercial"))
    assert [n.code for n in result.steps].count("share") == 1
    assert len(result.shares) == 3


# -- the bundled policies ----------------------------------------------------------------------


def test_bundled_payers_serve_their_schemes() -> None:
    bundled = bundled_policies()
    served = {payer: policy.served_schemes for payer, policy in bundled.items()}
    assert served == {
        "basic": (EMPLOYEE, RESIDENT),
        "critical": (EMPLOYEE, RESIDENT),
        "assistance": (EMPLOYEE, RESIDENT),
        "commercial": (EMPLOYEE, RESIDENT, NONE),
    }
    critical = bundled["critical"].schemes
    assert (critical[EMPLOYEE].name_zh, critical[RESIDENT].name_zh) == (
        "职工大额医疗费用补助",
        "城乡居民大病保险",
    )
    assert critical[EMPLOYEE].shares[Share.DEDUCTIBLE] is Coverage.EXCLUDED
    assert critical[RESIDENT].shares[Share.DEDUCTIBLE] is Coverage.IN_POLICY
    basic = bundled["basic"].schemes
    assert {rules.basis for rules in basic.values()} == {Basis.LINES}
    for policy in bundled.values():
        for scheme, rules in policy.schemes.items():
            assert all(b.pool.startswith(f"{scheme.value}.") for b in rules.benefits.values())
    level = HospitalLevel.TERTIARY
    assert basic[EMPLOYEE].benefit_for(IN).ratio_bp.at(level) == 8800
    assert basic[RESIDENT].benefit_for(IN).ratio_bp.at(level) == 6000
