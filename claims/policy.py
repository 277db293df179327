"""Payer policies as data: one TOML file per payer, loaded and validated here.

A policy says which catalogue classes a payer counts (and the self-pay share of class B,
乙类先自付), the yearly deductible (起付线, or threshold 起付标准 for critical illness) and the
ratio, both possibly by hospital level, the yearly cap (年度最高支付限额), the claim deadline and
who is eligible. docs/claims.md describes the format; ``load_policy`` refuses a file with a
``PolicyInvalid`` that names the file, every failing key path and the reason.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from claims.datafile import ROOT, Fields, join, parse_toml, read_toml
from claims.errors import PolicyInvalid, Problem
from claims.model import HospitalLevel, ItemClass, VisitType

POLICY_DIR = Path(__file__).resolve().parent / "policies"
PAYER_ID = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
ALL_VISITS = "all"
MAX_DEADLINE_DAYS = 3650


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
    """How a payer counts a catalogue class."""

    IN_POLICY = "in_policy"  # 政策范围内: counted, after the class's self-pay share
    OUT_OF_POLICY = "out_of_policy"  # 目录外 paid by the benefit's out-of-policy ratio
    EXCLUDED = "excluded"  # not paid by this payer


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


@dataclass(frozen=True)
class Policy:
    """One payer's policy; build it with ``load_policy`` or ``policy_from_toml``."""

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

    def benefit_for(self, visit_type: VisitType) -> Benefit:
        """The benefit that applies to a visit: the ``all`` one, or the visit type's own."""
        return self.benefits.get(ALL_VISITS) or self.benefits[visit_type.value]

    def class_rule(self, item_class: ItemClass) -> ClassRule:
        return self.classes[item_class]

    def is_eligible(self, flags: frozenset[str]) -> bool:
        """Everyone, or only citizens carrying one of ``eligible_flags``."""
        return not self.eligible_flags or bool(self.eligible_flags & flags)


# -- loading -----------------------------------------------------------------------------------

_TOP_KEYS = (
    "payer",
    "kind",
    "name_zh",
    "name_en",
    "deadline_days",
    "annual_cap_fen",
    "eligible_flags",
    "classes",
    "benefits",
)
_CLASS_KEYS = ("coverage", "self_pay_share_bp")
_BENEFIT_KEYS = ("deductible_fen", "ratio_bp", "cap_fen", "out_of_policy_ratio_bp")
_LEVEL_KEYS = tuple(level.key for level in HospitalLevel)
_POOLS = (ALL_VISITS, VisitType.OUTPATIENT.value, VisitType.INPATIENT.value)


def load_policy(path: Path) -> Policy:
    """Reads and validates one policy file; raises ``PolicyInvalid`` naming the file."""
    return parse_policy(read_toml(path, PolicyInvalid), str(path))


def policy_from_toml(text: str, source: str = "<string>") -> Policy:
    """A policy from TOML text; raises ``PolicyInvalid`` naming ``source``."""
    return parse_policy(parse_toml(text, source, PolicyInvalid), source)


def load_policies(directory: Path = POLICY_DIR) -> dict[str, Policy]:
    """Every ``*.toml`` policy in ``directory`` by payer id, in file-name order.

    Raises ``PolicyInvalid`` for the first invalid file, or when two files share a payer id.
    """
    policies: dict[str, Policy] = {}
    for path in sorted(directory.glob("*.toml")):
        policy = load_policy(path)
        if policy.payer in policies:
            first = policies[policy.payer].source
            raise PolicyInvalid(
                str(path), [Problem("payer", f"{policy.payer!r} is already defined by {first}")]
            )
        policies[policy.payer] = policy
    return policies


def bundled_policies() -> dict[str, Policy]:
    """The policies shipped in claims/policies/, by payer id."""
    return load_policies(POLICY_DIR)


def in_chain_order(policies: Iterable[Policy]) -> list[Policy]:
    """Policies in the default payer order: basic, critical illness, assistance, commercial
    (stable within a kind)."""
    return sorted(policies, key=lambda p: CHAIN_ORDER.index(p.kind))


def parse_policy(data: Mapping[str, Any], source: str) -> Policy:
    """Validates a parsed policy file; raises ``PolicyInvalid`` listing every problem."""
    f = Fields()
    f.only(data, _TOP_KEYS, ROOT)
    payer = f.text(data, "payer", ROOT)
    if payer and not PAYER_ID.fullmatch(payer):
        f.bad("payer", f"{payer!r} must be lower-case letters, digits or _ (1 to 32)")
    kind = f.text(data, "kind", ROOT, choices=[k.value for k in PolicyKind])
    name_zh = f.text(data, "name_zh", ROOT)
    name_en = f.text(data, "name_en", ROOT)
    deadline_days = f.integer(data, "deadline_days", ROOT, minimum=1, maximum=MAX_DEADLINE_DAYS)
    annual_cap: int | None = None
    if "annual_cap_fen" in data:
        annual_cap = f.integer(data, "annual_cap_fen", ROOT)
    flags = f.strings(data, "eligible_flags", ROOT)
    classes = _classes(f, f.table(data, "classes", ROOT))
    benefits = _benefits(f, f.table(data, "benefits", ROOT))
    uses_out_of_policy = any(r.coverage is Coverage.OUT_OF_POLICY for r in classes.values())
    for benefit in benefits.values():
        where = f"benefits.{benefit.pool}.out_of_policy_ratio_bp"
        if benefit.out_of_policy_ratio_bp and not uses_out_of_policy:
            f.bad(where, "has no effect: no class has coverage 'out_of_policy'")
    if f.problems:
        raise PolicyInvalid(source, f.problems)
    return Policy(
        payer=payer,
        kind=PolicyKind(kind),
        name_zh=name_zh,
        name_en=name_en,
        deadline_days=deadline_days,
        classes=MappingProxyType(classes),
        benefits=MappingProxyType(benefits),
        annual_cap_fen=annual_cap,
        eligible_flags=frozenset(flags),
        source=source,
    )


def _classes(f: Fields, table: Mapping[str, Any] | None) -> dict[ItemClass, ClassRule]:
    if table is None:
        return {}
    known = [c.value for c in ItemClass]
    for key in table:
        if key not in known:
            f.bad(
                f"classes.{key}",
                f"unknown catalogue class {key!r}; expected one of {', '.join(known)}",
            )
    rules: dict[ItemClass, ClassRule] = {}
    for item_class in ItemClass:
        path = f"classes.{item_class.value}"
        entry = f.table(table, item_class.value, "classes")
        if entry is None:
            continue
        f.only(entry, _CLASS_KEYS, path)
        coverage = f.text(entry, "coverage", path, choices=[c.value for c in Coverage])
        share = f.ratio_bp(entry, "self_pay_share_bp", path, default=0)
        if not coverage:
            continue
        if share and coverage != Coverage.IN_POLICY:
            f.bad(join(path, "self_pay_share_bp"), "applies only to coverage 'in_policy'")
        rules[item_class] = ClassRule(Coverage(coverage), share)
    return rules


def _benefits(f: Fields, table: Mapping[str, Any] | None) -> dict[str, Benefit]:
    if table is None:
        return {}
    f.only(table, _POOLS, "benefits")
    present = [pool for pool in _POOLS if pool in table]
    if ALL_VISITS in present and len(present) > 1:
        f.bad("benefits", "give either 'all', or both 'outpatient' and 'inpatient', not both")
    elif ALL_VISITS not in present and len(present) != 2:
        f.bad("benefits", "needs 'all', or both 'outpatient' and 'inpatient'")
    benefits: dict[str, Benefit] = {}
    for pool in present:
        path = f"benefits.{pool}"
        entry = f.table(table, pool, "benefits")
        if entry is None:
            continue
        f.only(entry, _BENEFIT_KEYS, path)
        benefits[pool] = Benefit(
            pool=pool,
            deductible_fen=_by_level(f, entry, "deductible_fen", path, ratio=False),
            ratio_bp=_by_level(f, entry, "ratio_bp", path, ratio=True),
            cap_fen=f.integer(entry, "cap_fen", path),
            out_of_policy_ratio_bp=f.ratio_bp(entry, "out_of_policy_ratio_bp", path, default=0),
        )
    return benefits


def _by_level(f: Fields, entry: Mapping[str, Any], key: str, path: str, *, ratio: bool) -> ByLevel:
    def one(obj: Mapping[str, Any], name: str, where: str) -> int:
        return f.ratio_bp(obj, name, where) if ratio else f.integer(obj, name, where)

    value = entry.get(key)
    if not isinstance(value, Mapping):
        return ByLevel.single(one(entry, key, path))
    where = join(path, key)
    for name in value:
        if name not in _LEVEL_KEYS:
            f.bad(
                join(where, name),
                f"unknown hospital level {name!r}; expected one of {', '.join(_LEVEL_KEYS)}",
            )
    levels = tuple(one(value, name, where) for name in _LEVEL_KEYS)
    return ByLevel((levels[0], levels[1], levels[2], levels[3]))
