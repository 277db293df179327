"""Small builders for claims tests: lines, invoices, citizens and the test policies.

The test policies use round figures so that each expected fen in the tables can be worked out
by hand; the tables say how.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from claims import (
    Accumulator,
    Citizen,
    ClaimInvoice,
    ClaimLine,
    HospitalLevel,
    ItemClass,
    Policy,
    PoolUsage,
    Scheme,
    Sex,
    TillSplit,
    VisitType,
    policy_from_toml,
)

CST = timezone(timedelta(hours=8))
ISSUED = datetime(2025, 3, 10, 15, 0, tzinfo=CST)
CLAIMED = datetime(2025, 4, 1, 9, 0, tzinfo=CST)

BASIC = """
payer = "basic"
kind = "basic"
name_zh = "测试基本医保"
name_en = "Test basic insurance"
deadline_days = 365
annual_cap_fen = 1_000_000

[classes]
A = { coverage = "in_policy" }
B = { coverage = "in_policy", self_pay_share_bp = 1000 }
C = { coverage = "excluded" }
self = { coverage = "excluded" }

[benefits.outpatient]
deductible_fen = 10_000
ratio_bp = { township = 9000, primary = 8000, secondary = 7000, tertiary = 6000 }
cap_fen = 50_000

[benefits.inpatient]
deductible_fen = { township = 20_000, primary = 40_000, secondary = 60_000, tertiary = 100_000 }
ratio_bp = { township = 9500, primary = 8500, secondary = 7500, tertiary = 6500 }
cap_fen = 1_000_000
"""

CRITICAL = """
payer = "critical"
kind = "critical_illness"
name_zh = "测试大病保险"
name_en = "Test critical-illness insurance"
deadline_days = 365

[classes]
A = { coverage = "in_policy" }
B = { coverage = "in_policy", self_pay_share_bp = 1000 }
C = { coverage = "excluded" }
self = { coverage = "excluded" }

[benefits.all]
deductible_fen = 100_000
ratio_bp = 5000
cap_fen = 300_000
"""

ASSISTANCE = """
payer = "assistance"
kind = "assistance"
name_zh = "测试医疗救助"
name_en = "Test medical assistance"
deadline_days = 365
eligible_flags = ["low_income"]

[classes]
A = { coverage = "in_policy" }
B = { coverage = "in_policy", self_pay_share_bp = 1000 }
C = { coverage = "excluded" }
self = { coverage = "excluded" }

[benefits.all]
deductible_fen = 0
ratio_bp = 7000
cap_fen = 100_000
"""

COMMERCIAL = """
payer = "commercial"
kind = "commercial"
name_zh = "测试惠民保"
name_en = "Test city insurance"
deadline_days = 730

[classes]
A = { coverage = "in_policy" }
B = { coverage = "in_policy" }
C = { coverage = "out_of_policy" }
self = { coverage = "excluded" }

[benefits.all]
deductible_fen = 20_000
ratio_bp = 8000
out_of_policy_ratio_bp = 5000
cap_fen = 1_000_000
"""


def policies() -> dict[str, Policy]:
    """The four test policies by payer id."""
    return {
        p.payer: p
        for p in (
            policy_from_toml(BASIC, "test:basic"),
            policy_from_toml(CRITICAL, "test:critical"),
            policy_from_toml(ASSISTANCE, "test:assistance"),
            policy_from_toml(COMMERCIAL, "test:commercial"),
        )
    }


# Scheme sections for the test policies, appended to them by ``till_policies``: basic counts the
# lines and is settled at the till by the fund; critical counts shares (employees: the copay
# above 10,000 at 50%; residents: copay and deductible share above the inherited 100,000, 50%)
# and is settled by other funds; commercial counts copay and deductible share at 80%, self-pay
# at 50%, above 20,000 (inherited), and serves the uninsured at 50% with no deductible.
BASIC_SCHEMES = """
[schemes.employee]
name_zh = "测试职工医保"
name_en = "Test employees' fund"
till_channel = "fund"

[schemes.employee.benefits.outpatient]
deductible_fen = 10_000
ratio_bp = 8000
cap_fen = 50_000

[schemes.employee.benefits.inpatient]
deductible_fen = 20_000
ratio_bp = 9000
cap_fen = 1_000_000

[schemes.resident]
till_channel = "fund"
"""

CRITICAL_SCHEMES = """
[schemes.employee]
name_zh = "测试职工大额"
name_en = "Test employees' large-amount subsidy"
till_channel = "other"

[schemes.employee.shares]
copay = { coverage = "in_policy" }
deductible = { coverage = "excluded" }
self_pay = { coverage = "excluded" }

[schemes.employee.benefits.all]
deductible_fen = 10_000
ratio_bp = 5000
cap_fen = 300_000

[schemes.resident]
till_channel = "other"

[schemes.resident.shares]
copay = { coverage = "in_policy" }
deductible = { coverage = "in_policy" }
self_pay = { coverage = "excluded" }
"""

ASSISTANCE_SCHEMES = """
[schemes.employee.shares]
copay = { coverage = "in_policy" }
deductible = { coverage = "in_policy" }
self_pay = { coverage = "in_policy" }

[schemes.resident.shares]
copay = { coverage = "in_policy" }
deductible = { coverage = "in_policy" }
self_pay = { coverage = "in_policy" }
"""

COMMERCIAL_SCHEMES = """
[schemes.employee.shares]
copay = { coverage = "in_policy" }
deductible = { coverage = "in_policy" }
self_pay = { coverage = "out_of_policy" }

[schemes.resident.shares]
copay = { coverage = "in_policy" }
deductible = { coverage = "in_policy" }
self_pay = { coverage = "out_of_policy" }

[schemes.none.shares]
copay = { coverage = "in_policy" }
deductible = { coverage = "in_policy" }
self_pay = { coverage = "in_policy" }

[schemes.none.benefits.all]
deductible_fen = 0
ratio_bp = 5000
cap_fen = 1_000_000
"""


def till_policies() -> dict[str, Policy]:
    """The four test policies with their scheme sections, by payer id."""
    return {
        p.payer: p
        for p in (
            policy_from_toml(BASIC + BASIC_SCHEMES, "test:basic"),
            policy_from_toml(CRITICAL + CRITICAL_SCHEMES, "test:critical"),
            policy_from_toml(ASSISTANCE + ASSISTANCE_SCHEMES, "test:assistance"),
            policy_from_toml(COMMERCIAL + COMMERCIAL_SCHEMES, "test:commercial"),
        )
    }


def till(
    *,
    fund: int = 0,
    account: int = 0,
    other: int = 0,
    copay: int = 0,
    deductible: int = 0,
    self_pay: int = 0,
) -> TillSplit:
    """A till split whose cash is what the shares leave after the account."""
    cash = copay + deductible + self_pay - account
    return TillSplit(fund, account, other, cash, copay, deductible, self_pay)


CODES = {
    ItemClass.A: "F001102000010000",
    ItemClass.B: "F001102000030000",
    ItemClass.C: "F003105110010000",
    ItemClass.SELF_PAY: "F001109000010002",
}


def line(
    item_class: ItemClass | str,
    amount_fen: int,
    *,
    code: str | None = None,
    name: str = "测试项目",
    quantity_milli: int = 1000,
    unit_price_fen: int | None = None,
    time: datetime = ISSUED,
    department: str = "内科",
) -> ClaimLine:
    klass = ItemClass(item_class)
    price = amount_fen if unit_price_fen is None else unit_price_fen
    return ClaimLine(
        code or CODES[klass], name, klass, price, quantity_milli, amount_fen, department, time
    )


def invoice(
    *lines: ClaimLine,
    visit: VisitType = VisitType.OUTPATIENT,
    level: HospitalLevel = HospitalLevel.TERTIARY,
    total_fen: int | None = None,
    issued_at: datetime = ISSUED,
    claimed_at: datetime | None = CLAIMED,
    reference: str = "33082501-0000000001",
    hospital: str = "H33080200001",
    diagnoses: tuple[str, ...] = ("J18.9",),
    admitted_on: date | None = None,
    discharged_on: date | None = None,
    scheme: Scheme = Scheme.NONE,
    till: TillSplit | None = None,
) -> ClaimInvoice:
    """An invoice of these lines; with a ``till`` its total is the till's unless given."""
    if visit is VisitType.INPATIENT and admitted_on is None:
        admitted_on = issued_at.date() - timedelta(days=5)
        discharged_on = issued_at.date()
    return ClaimInvoice(
        reference=reference,
        hospital=hospital,
        hospital_level=level,
        visit_type=visit,
        issued_at=issued_at,
        total_fen=_total(lines, till) if total_fen is None else total_fen,
        lines=tuple(lines),
        diagnoses=diagnoses,
        admitted_on=admitted_on,
        discharged_on=discharged_on,
        claimed_at=claimed_at,
        scheme=scheme,
        till=till,
    )


def _total(lines: tuple[ClaimLine, ...], till: TillSplit | None) -> int:
    return till.total_fen if till is not None else sum(ln.amount_fen for ln in lines)


def citizen(
    sex: Sex = Sex.F, birth: date = date(1980, 6, 15), flags: frozenset[str] = frozenset()
) -> Citizen:
    return Citizen(sex, birth, flags)


def accumulator(payer: str, year: int = 2025, **pools: tuple[int, int]) -> Accumulator:
    """``pool=(deductible_used_fen, paid_fen)`` for each pool given."""
    acc = Accumulator.empty(payer, year)
    for name, (used, paid) in pools.items():
        acc = acc.with_pool(name, PoolUsage(used, paid))
    return acc
