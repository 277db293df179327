"""The plain inputs of adjudication and audit, which the api maps its own records onto.

Money is integer fen, quantities integer thousandths of a unit, every datetime timezone-aware.
These types mirror, but do not import, ``verifier.invoice`` and ``chain.model``: claims is pure
and depends on nothing of ours.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta, timezone

from claims.errors import ClaimInputInvalid
from claims.names import normalise_name

# Policy dates (deadline, policy year) are calendar dates in China Standard Time (UTC+8, no
# daylight saving), whatever offset a datetime was given in.
CHINA_TZ = timezone(timedelta(hours=8), "CST")


class ItemClass(enum.StrEnum):
    """Catalogue class of a line: 甲 A, 乙 B, 丙 C or self-pay (自费)."""

    A = "A"
    B = "B"
    C = "C"
    SELF_PAY = "self"


class VisitType(enum.StrEnum):
    OUTPATIENT = "outpatient"  # 门诊
    INPATIENT = "inpatient"  # 住院


class HospitalLevel(enum.IntEnum):
    """Hospital grade, with the ledger's values; policy files name it in lower case."""

    TOWNSHIP = 0  # 乡镇卫生院 / 社区卫生服务中心
    PRIMARY = 1  # 一级
    SECONDARY = 2  # 二级
    TERTIARY = 3  # 三级

    @property
    def key(self) -> str:
        """The name used in policy files: township, primary, secondary, tertiary."""
        return self.name.lower()


class Sex(enum.StrEnum):
    F = "F"
    M = "M"


class Scheme(enum.StrEnum):
    """The citizen's basic medical insurance scheme, as the invoice names it."""

    EMPLOYEE = "employee"  # 职工基本医疗保险
    RESIDENT = "resident"  # 城乡居民基本医疗保险
    NONE = "none"  # not insured: the citizen paid as a self-pay patient (自费)


class Share(enum.StrEnum):
    """One of the patient's shares of an invoice as the till splits them, in the order money
    that paid them is attributed (docs/claims.md, "The till's split")."""

    COPAY = "copay"  # 个人自付: co-payment within the catalogue (乙类先自付, above the ratio)
    DEDUCTIBLE = "deductible"  # 个人自负: below the deductible (起付线)
    SELF_PAY = "self_pay"  # 个人自费: outside the catalogue (丙类 and self-pay lines)


class TillChannel(enum.StrEnum):
    """A channel other than the patient's that paid at the till."""

    FUND = "fund"  # 统筹基金支付: the basic insurance pooled fund
    OTHER = "other"  # 其他支付: 大病 insurance, medical assistance (救助), civil servants' subsidy


def _aware(name: str, moment: datetime | None) -> None:
    if moment is not None and moment.utcoffset() is None:
        raise ClaimInputInvalid(name, f"must be timezone-aware, got naive {moment.isoformat()}")


def _fen(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ClaimInputInvalid(name, f"must be an integer number of fen, got {value!r}")
    if value < 0:
        raise ClaimInputInvalid(name, f"must not be negative, got {value}")


@dataclass(frozen=True, slots=True)
class ClaimLine:
    """One itemised line (明细) as billed: code, name, class, price x quantity = amount."""

    code: str
    name: str
    item_class: ItemClass
    unit_price_fen: int
    quantity_milli: int  # thousandths of a unit
    amount_fen: int
    department: str
    time: datetime

    def __post_init__(self) -> None:
        _fen("unit_price_fen", self.unit_price_fen)
        _fen("amount_fen", self.amount_fen)
        _fen("quantity_milli", self.quantity_milli)
        _aware("time", self.time)
        if not isinstance(self.item_class, ItemClass):
            object.__setattr__(self, "item_class", ItemClass(self.item_class))

    @property
    def day(self) -> date:
        """The calendar day of service, in the hospital's own offset as billed."""
        return self.time.date()


@dataclass(frozen=True, slots=True)
class TillSplit:
    """How the invoice was paid at the hospital's till, and the patient's shares of it.

    ``fund + account + other + cash`` is the invoice total (checked by ``ClaimInvoice``) and
    ``copay + deductible + self_pay == account + cash``: the shares are what was left to the
    patient after the pooled fund and the other funds, paid from the personal account
    (个人账户支付) or in cash (个人现金支付).
    """

    fund_fen: int  # 统筹基金支付
    account_fen: int  # 个人账户支付
    other_fen: int  # 其他支付
    cash_fen: int  # 个人现金支付
    copay_fen: int  # 个人自付
    deductible_fen: int  # 个人自负
    self_pay_fen: int  # 个人自费

    def __post_init__(self) -> None:
        for item in fields(self):
            _fen(item.name, getattr(self, item.name))
        if self.shares_fen != self.account_fen + self.cash_fen:
            raise ClaimInputInvalid(
                "till",
                f"copay + deductible + self_pay = {self.shares_fen} fen must equal "
                f"account + cash = {self.account_fen + self.cash_fen} fen",
            )

    @property
    def total_fen(self) -> int:
        """What the four channels paid together: the invoice total."""
        return self.fund_fen + self.account_fen + self.other_fen + self.cash_fen

    @property
    def paid_at_till_fen(self) -> int:
        """What the fund, the personal account and the other funds paid: never paid again."""
        return self.fund_fen + self.account_fen + self.other_fen

    @property
    def shares_fen(self) -> int:
        """The patient's three shares together."""
        return self.copay_fen + self.deductible_fen + self.self_pay_fen

    def share(self, share: Share) -> int:
        """One of the patient's shares, in fen."""
        return {
            Share.COPAY: self.copay_fen,
            Share.DEDUCTIBLE: self.deductible_fen,
            Share.SELF_PAY: self.self_pay_fen,
        }[share]

    def channel(self, channel: TillChannel) -> int:
        """What one channel paid at the till, in fen."""
        return self.fund_fen if channel is TillChannel.FUND else self.other_fen


@dataclass(frozen=True, slots=True)
class ClaimInvoice:
    """A medical e-invoice as presented in a claim (or as history for the audit rules).

    ``reference`` is any stable identity (bill code-number, or the invoice id in hex).
    ``claimed_at`` is when the citizen claimed: adjudication needs it for the deadline; history
    invoices may leave it None. ``till`` is the till's split (a v2 record carries it); without
    it adjudication reads only the lines, by each policy's top-level rules, as before the
    split existed. ``scheme`` chooses a policy's section for the scheme when there is a till.
    """

    reference: str
    hospital: str
    hospital_level: HospitalLevel
    visit_type: VisitType
    issued_at: datetime
    total_fen: int
    lines: tuple[ClaimLine, ...]
    diagnoses: tuple[str, ...] = ()
    admitted_on: date | None = None
    discharged_on: date | None = None
    claimed_at: datetime | None = None
    scheme: Scheme = Scheme.NONE
    till: TillSplit | None = None

    def __post_init__(self) -> None:
        _fen("total_fen", self.total_fen)
        if not isinstance(self.scheme, Scheme):
            object.__setattr__(self, "scheme", Scheme(self.scheme))
        if self.till is not None:
            self._check_till(self.till)
        _aware("issued_at", self.issued_at)
        _aware("claimed_at", self.claimed_at)
        if not isinstance(self.hospital_level, HospitalLevel):
            object.__setattr__(self, "hospital_level", HospitalLevel(self.hospital_level))
        if not isinstance(self.visit_type, VisitType):
            object.__setattr__(self, "visit_type", VisitType(self.visit_type))
        if not isinstance(self.lines, tuple):
            object.__setattr__(self, "lines", tuple(self.lines))
        if not isinstance(self.diagnoses, tuple):
            object.__setattr__(self, "diagnoses", tuple(self.diagnoses))
        if self.visit_type is VisitType.INPATIENT and (
            self.admitted_on is None or self.discharged_on is None
        ):
            raise ClaimInputInvalid("admitted_on", "an inpatient invoice needs both stay dates")
        if self.admitted_on and self.discharged_on and self.discharged_on < self.admitted_on:
            raise ClaimInputInvalid("discharged_on", "is before admitted_on")

    def _check_till(self, till: TillSplit) -> None:
        if not isinstance(till, TillSplit):
            raise ClaimInputInvalid("till", f"must be a TillSplit or None, got {till!r}")
        if till.total_fen != self.total_fen:
            raise ClaimInputInvalid(
                "till",
                f"fund + account + other + cash = {till.total_fen} fen must equal the invoice "
                f"total {self.total_fen} fen",
            )
        if self.scheme is Scheme.NONE and till.fund_fen + till.account_fen:
            raise ClaimInputInvalid(
                "till",
                "an invoice of someone without basic insurance (scheme 'none') has no pooled "
                f"fund or personal account payment, got fund {till.fund_fen} fen and account "
                f"{till.account_fen} fen",
            )

    @property
    def issue_date(self) -> date:
        """The issue date in China Standard Time; the deadline counts from it."""
        return self.issued_at.astimezone(CHINA_TZ).date()

    @property
    def policy_year(self) -> int:
        """The year whose deductible and caps the invoice counts against (its issue year)."""
        return self.issue_date.year

    @property
    def lines_fen(self) -> int:
        """What the lines add up to."""
        return sum(line.amount_fen for line in self.lines)


@dataclass(frozen=True, slots=True)
class Citizen:
    """The insured person (参保人), as much as adjudication and audit need.

    ``flags`` carry eligibility facts, e.g. ``low_income`` (低保) for medical assistance.
    """

    sex: Sex
    birth_date: date
    flags: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.sex not in ("F", "M"):
            raise ClaimInputInvalid("sex", f"must be 'F' or 'M', got {self.sex!r}")
        if not isinstance(self.sex, Sex):
            object.__setattr__(self, "sex", Sex(self.sex))
        if not isinstance(self.flags, frozenset):
            object.__setattr__(self, "flags", frozenset(self.flags))

    def age_on(self, day: date) -> int:
        """Age in whole years on ``day`` (someone born on 29 February turns a year older on
        1 March in common years)."""
        before = (day.month, day.day) < (self.birth_date.month, self.birth_date.day)
        return day.year - self.birth_date.year - int(before)


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    """One entry of the insurance catalogue (医保目录) with the limits the audit reads.

    ``max_daily_milli`` bounds one calendar day of an inpatient stay, ``max_outpatient_milli``
    one outpatient invoice; ``min_age`` is inclusive and ``max_age`` exclusive, in whole years
    on the day of service; None means no limit.
    """

    code: str
    name: str
    item_class: ItemClass
    unit_price_fen: int
    max_daily_milli: int | None = None
    max_outpatient_milli: int | None = None
    sex: Sex | None = None
    min_age: int | None = None
    max_age: int | None = None

    def __post_init__(self) -> None:
        _fen("unit_price_fen", self.unit_price_fen)
        if self.sex is not None and self.sex not in ("F", "M"):
            raise ClaimInputInvalid("sex", f"must be 'F', 'M' or None, got {self.sex!r}")
        if not isinstance(self.item_class, ItemClass):
            object.__setattr__(self, "item_class", ItemClass(self.item_class))


class Catalogue(Mapping[str, CatalogueEntry]):
    """The catalogue by code, with an index of normalised names built once.

    Build it once and share it: the name index makes the 串换 rule cheap.
    """

    __slots__ = ("_by_code", "_by_name", "_normalised")

    def __init__(self, entries: Iterable[CatalogueEntry]) -> None:
        self._by_code: dict[str, CatalogueEntry] = {}
        self._by_name: dict[str, list[CatalogueEntry]] = {}
        self._normalised: dict[str, str] = {}
        for entry in entries:
            if entry.code in self._by_code:
                raise ClaimInputInvalid("code", f"catalogue code {entry.code!r} appears twice")
            self._by_code[entry.code] = entry
            key = normalise_name(entry.name)
            self._normalised[entry.code] = key
            self._by_name.setdefault(key, []).append(entry)

    def __getitem__(self, code: str) -> CatalogueEntry:
        return self._by_code[code]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_code)

    def __len__(self) -> int:
        return len(self._by_code)

    def normalised_name(self, code: str) -> str:
        """The normalised name of the entry with this code (KeyError if unknown)."""
        return self._normalised[code]

    def named(self, normalised: str) -> tuple[CatalogueEntry, ...]:
        """Entries whose normalised name is exactly ``normalised``."""
        return tuple(self._by_name.get(normalised, ()))

    def normalised_names(self) -> Iterator[tuple[str, str]]:
        """(code, normalised name) of every entry."""
        return iter(self._normalised.items())
