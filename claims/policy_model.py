"""The types of a payer policy: what the TOML files of claims/policies/ load into.

``claims.policy`` reads and validates the files; this module only holds the validated data and
what it answers (which rules apply to an invoice, which benefit to a visit).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from claims.model import (
    ClaimInvoice,
    HospitalLevel,
    ItemClass,
    Scheme,
    Share,
    TillChannel,
    VisitType,
)

ALL_VISITS = "all"


class PolicyKind(enum.StrEnum):
    """What kind of payer a policy describes; also the default order of the payer chain."""

    BASIC = "basic"  # 基本医保统筹
    CRITICAL_ILLNESS = "critical_illness"  # 大病保险
    ASSISTANCE = "assistance"  # 医疗救助
    COMMERCIAL = "commercial"  # 商业补充保险 (惠民保)


CHAIN_ORDER = (
    PolicyKind.BASIC,
    PolicyKind.CRITICAL_ILLNESS,
    PolicyKind.ASSISTANCE,
    PolicyKind.COMMERCIAL,
)


class Coverage(enum.StrEnum):
    """How a payer counts a catalogue class, or one of the patient's shares."""

    IN_POLICY = "in_policy"  # 政策范围内: counted, after the class's self-pay share
    OUT_OF_POLICY = "out_of_policy"  # 目录外 paid by the benefit's out-of-policy ratio
    EXCLUDED = "excluded"  # not paid by this payer


class Basis(enum.StrEnum):
    """What a payer's arithmetic starts from."""

    LINES = "lines"  # the itemised lines, counted by catalogue class
    SHARES = "shares"  # the patient's shares on the till's split, left in cash


@dataclass(frozen=True, slots=True)
class ClassRule:
    """How one catalogue class counts; ``self_pay_share_bp`` is the part of an in-policy line
    the citizen pays first (乙类先自付), excluded from this payer's base."""

    coverage: Coverage
    self_pay_share_bp: int = 0


@dataclass(frozen=True, slots=True)
class ByLevel:
    """A figure that may differ by hospital level (index: ``HospitalLevel`` value)."""

    values: tuple[int, int, int, int]

    @classmethod
    def single(cls, value: int) -> ByLevel:
        return cls((value, value, value, value))

    def at(self, level: HospitalLevel) -> int:
        return self.values[int(level)]

    @property
    def is_single(self) -> bool:
        return len(set(self.values)) == 1


@dataclass(frozen=True, slots=True)
class Benefit:
    """The money parameters for one pool of visits (all, outpatient or inpatient).

    The deductible and the cap are yearly and tracked per pool by the ``Accumulator``.
    """

    pool: str
    deductible_fen: ByLevel
    ratio_bp: ByLevel
    cap_fen: int
    out_of_policy_ratio_bp: int = 0


def _no_shares() -> Mapping[Share, Coverage]:
    return MappingProxyType({})


def _no_schemes() -> Mapping[Scheme, PolicyRules]:
    return MappingProxyType({})


@dataclass(frozen=True)
class PolicyRules:
    """What one payer applies to one invoice: the file's top-level rules (``scheme`` None, for
    invoices without a till split) or its section for one insurance scheme.

    With ``shares`` the payer pays from the patient's shares left in cash (``Basis.SHARES``),
    else from the lines by class. ``till_channel`` is the till channel that is this payer's own
    money: when it paid anything, the payer settled the invoice at the till and pays no more.
    A section's benefits name their pools ``<scheme>.<pool>`` (``employee.inpatient``), so a
    citizen's yearly totals in one scheme never count in another.
    """

    scheme: Scheme | None
    name_zh: str
    name_en: str
    classes: Mapping[ItemClass, ClassRule]
    benefits: Mapping[str, Benefit]
    annual_cap_fen: int | None = None
    shares: Mapping[Share, Coverage] = field(default_factory=_no_shares)
    till_channel: TillChannel | None = None

    @property
    def basis(self) -> Basis:
        return Basis.SHARES if self.shares else Basis.LINES

    def benefit_for(self, visit_type: VisitType) -> Benefit:
        """The benefit that applies to a visit: the ``all`` one, or the visit type's own."""
        return self.benefits.get(ALL_VISITS) or self.benefits[visit_type.value]


@dataclass(frozen=True)
class Policy:
    """One payer's policy; build it with ``load_policy`` or ``policy_from_toml``.

    The top-level fields are the rules for invoices without a till split; ``schemes`` holds
    the rules per insurance scheme for invoices with one (``rules_for`` picks).
    """

    payer: str
    kind: PolicyKind
    name_zh: str
    name_en: str
    deadline_days: int
    classes: Mapping[ItemClass, ClassRule]
    benefits: Mapping[str, Benefit]
    annual_cap_fen: int | None = None
    eligible_flags: frozenset[str] = frozenset()
    source: str = "<memory>"
    schemes: Mapping[Scheme, PolicyRules] = field(default_factory=_no_schemes)

    def benefit_for(self, visit_type: VisitType) -> Benefit:
        """The top-level benefit that applies to a visit: the ``all`` one, or the visit type's
        own (for an invoice with a till split, ``rules_for(invoice).benefit_for``)."""
        return self.benefits.get(ALL_VISITS) or self.benefits[visit_type.value]

    def class_rule(self, item_class: ItemClass) -> ClassRule:
        return self.classes[item_class]

    def is_eligible(self, flags: frozenset[str]) -> bool:
        """Everyone, or only citizens carrying one of ``eligible_flags``."""
        return not self.eligible_flags or bool(self.eligible_flags & flags)

    @property
    def top_rules(self) -> PolicyRules:
        """The file's top-level rules: for invoices without a till split."""
        return PolicyRules(
            None, self.name_zh, self.name_en, self.classes, self.benefits, self.annual_cap_fen
        )

    def rules_for(self, invoice: ClaimInvoice) -> PolicyRules | None:
        """The rules for ``invoice``: the top-level ones without a till split, else the
        section of the invoice's scheme (None: this payer does not serve that scheme)."""
        if invoice.till is None:
            return self.top_rules
        return self.schemes.get(invoice.scheme)

    @property
    def served_schemes(self) -> tuple[Scheme, ...]:
        """The schemes this payer has a section for, in ``Scheme`` order."""
        return tuple(scheme for scheme in Scheme if scheme in self.schemes)


def in_chain_order(policies: Iterable[Policy]) -> list[Policy]:
    """Policies in the default payer order: basic, critical illness, assistance, commercial
    (stable within a kind)."""
    return sorted(policies, key=lambda p: CHAIN_ORDER.index(p.kind))
