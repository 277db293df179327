"""Payer policies as data: one TOML file per payer, loaded and validated here.

A policy says which catalogue classes a payer counts (and the self-pay share of class B,
乙类先自付), the yearly deductible (起付线, or threshold 起付标准 for critical illness) and the
ratio, both possibly by hospital level, the yearly cap (年度最高支付限额), the claim deadline and
who is eligible. Its ``[schemes.<scheme>]`` sections say what it pays on an invoice that carries
the till's split, per insurance scheme: which of the patient's shares (自付, 自负, 自费) it
covers and how, and which till channel is its own money. docs/claims.md describes the format;
``load_policy`` refuses a file with a ``PolicyInvalid`` that names the file, every failing key
path and the reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from claims.datafile import ROOT, Fields, join, parse_toml, read_toml
from claims.errors import PolicyInvalid, Problem
from claims.model import HospitalLevel, ItemClass, Scheme, Share, TillChannel, VisitType
from claims.policy_model import (
    ALL_VISITS,
    CHAIN_ORDER,
    Basis,
    Benefit,
    ByLevel,
    ClassRule,
    Coverage,
    Policy,
    PolicyKind,
    PolicyRules,
    in_chain_order,
)

__all__ = [
    "ALL_VISITS",
    "CHAIN_ORDER",
    "POLICY_DIR",
    "Basis",
    "Benefit",
    "ByLevel",
    "ClassRule",
    "Coverage",
    "Policy",
    "PolicyKind",
    "PolicyRules",
    "bundled_policies",
    "in_chain_order",
    "load_policies",
    "load_policy",
    "parse_policy",
    "policy_from_toml",
]

POLICY_DIR = Path(__file__).resolve().parent / "policies"
PAYER_ID = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MAX_DEADLINE_DAYS = 3650


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
    "schemes",
)
_SCHEME_KEYS = (
    "name_zh",
    "name_en",
    "annual_cap_fen",
    "classes",
    "benefits",
    "shares",
    "till_channel",
)
_CLASS_KEYS = ("coverage", "self_pay_share_bp")
_SHARE_KEYS = ("coverage",)
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
    classes = _classes(f, f.table(data, "classes", ROOT), "classes")
    benefits = _benefits(f, f.table(data, "benefits", ROOT), "benefits")
    _check_out_of_policy(f, benefits, classes.values(), "benefits")
    top = PolicyRules(
        None,
        name_zh,
        name_en,
        MappingProxyType(classes),
        MappingProxyType(benefits),
        annual_cap,
    )
    schemes = _schemes(f, f.table(data, "schemes", ROOT, required=False), top)
    if f.problems:
        raise PolicyInvalid(source, f.problems)
    return Policy(
        payer=payer,
        kind=PolicyKind(kind),
        name_zh=name_zh,
        name_en=name_en,
        deadline_days=deadline_days,
        classes=top.classes,
        benefits=top.benefits,
        annual_cap_fen=annual_cap,
        eligible_flags=frozenset(flags),
        source=source,
        schemes=MappingProxyType(schemes),
    )


def _schemes(
    f: Fields, table: Mapping[str, Any] | None, top: PolicyRules
) -> dict[Scheme, PolicyRules]:
    """The ``[schemes.<scheme>]`` sections; each key a section leaves out is the top level's."""
    if table is None:
        return {}
    f.only(table, [scheme.value for scheme in Scheme], "schemes")
    sections: dict[Scheme, PolicyRules] = {}
    for scheme in Scheme:
        path = f"schemes.{scheme.value}"
        entry = f.table(table, scheme.value, "schemes", required=False)
        if entry is None:
            continue
        f.only(entry, _SCHEME_KEYS, path)
        classes = top.classes
        if "classes" in entry:
            classes = MappingProxyType(
                _classes(f, f.table(entry, "classes", path), join(path, "classes"))
            )
        shares = _shares(f, f.table(entry, "shares", path, required=False), join(path, "shares"))
        benefits = {
            pool: replace(benefit, pool=f"{scheme.value}.{benefit.pool}")
            for pool, benefit in top.benefits.items()
        }
        if "benefits" in entry:
            where = join(path, "benefits")
            own = _benefits(f, f.table(entry, "benefits", path), where, f"{scheme.value}.")
            coverages = shares.values() if shares else [rule.coverage for rule in classes.values()]
            _check_out_of_policy(f, own, coverages, where)
            benefits = own
        channel = f.text(
            entry, "till_channel", path, choices=[c.value for c in TillChannel], default=""
        )
        sections[scheme] = PolicyRules(
            scheme,
            f.text(entry, "name_zh", path, default=top.name_zh),
            f.text(entry, "name_en", path, default=top.name_en),
            classes,
            MappingProxyType(benefits),
            f.integer(entry, "annual_cap_fen", path)
            if "annual_cap_fen" in entry
            else top.annual_cap_fen,
            MappingProxyType(shares),
            TillChannel(channel) if channel else None,
        )
    return sections


def _check_out_of_policy(
    f: Fields,
    benefits: Mapping[str, Benefit],
    counted: Iterable[ClassRule | Coverage],
    where: str,
) -> None:
    """An out-of-policy ratio needs something counted out of policy, or it is a mistake."""
    coverages = [c.coverage if isinstance(c, ClassRule) else c for c in counted]
    if Coverage.OUT_OF_POLICY in coverages:
        return
    for pool, benefit in benefits.items():
        if benefit.out_of_policy_ratio_bp:
            f.bad(
                f"{where}.{pool}.out_of_policy_ratio_bp",
                "has no effect: nothing is counted with coverage 'out_of_policy'",
            )


def _classes(f: Fields, table: Mapping[str, Any] | None, where: str) -> dict[ItemClass, ClassRule]:
    if table is None:
        return {}
    known = [c.value for c in ItemClass]
    for key in table:
        if key not in known:
            f.bad(
                join(where, key),
                f"unknown catalogue class {key!r}; expected one of {', '.join(known)}",
            )
    rules: dict[ItemClass, ClassRule] = {}
    for item_class in ItemClass:
        path = join(where, item_class.value)
        entry = f.table(table, item_class.value, where)
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


def _shares(f: Fields, table: Mapping[str, Any] | None, where: str) -> dict[Share, Coverage]:
    """How a section counts each of the patient's shares; all three are required."""
    if table is None:
        return {}
    known = [s.value for s in Share]
    for key in table:
        if key not in known:
            f.bad(
                join(where, key),
                f"unknown patient's share {key!r}; expected one of {', '.join(known)}",
            )
    shares: dict[Share, Coverage] = {}
    for share in Share:
        path = join(where, share.value)
        entry = f.table(table, share.value, where)
        if entry is None:
            continue
        f.only(entry, _SHARE_KEYS, path)
        coverage = f.text(entry, "coverage", path, choices=[c.value for c in Coverage])
        if coverage:
            shares[share] = Coverage(coverage)
    return shares


def _benefits(
    f: Fields, table: Mapping[str, Any] | None, where: str, prefix: str = ""
) -> dict[str, Benefit]:
    if table is None:
        return {}
    f.only(table, _POOLS, where)
    present = [pool for pool in _POOLS if pool in table]
    if ALL_VISITS in present and len(present) > 1:
        f.bad(where, "give either 'all', or both 'outpatient' and 'inpatient', not both")
    elif ALL_VISITS not in present and len(present) != 2:
        f.bad(where, "needs 'all', or both 'outpatient' and 'inpatient'")
    benefits: dict[str, Benefit] = {}
    for pool in present:
        path = join(where, pool)
        entry = f.table(table, pool, where)
        if entry is None:
            continue
        f.only(entry, _BENEFIT_KEYS, path)
        benefits[pool] = Benefit(
            pool=prefix + pool,
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
