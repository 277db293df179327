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
    Sex,
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
) -> ClaimInvoice:
    if visit is VisitType.INPATIENT and admitted_on is None:
        admitted_on = issued_at.date() - timedelta(days=5)
        discharged_on = issued_at.date()
    return ClaimInvoice(
        reference=reference,
        hospital=hospital,
        hospital_level=level,
        visit_type=visit,
        issued_at=issued_at,
        total_fen=sum(ln.amount_fen for ln in lines) if total_fen is None else total_fen,
        lines=tuple(lines),
        diagnoses=diagnoses,
        admitted_on=admitted_on,
        discharged_on=discharged_on,
        claimed_at=claimed_at,
    )


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
