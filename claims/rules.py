"""The smart-audit rules (智能审核) as data: severity, reason texts and thresholds per rule.

The checks themselves are code (claims/audit.py); which run, how severe a hit is, what the
citizen and reviewer read, and every threshold come from claims/rules.toml, validated here.
"""

from __future__ import annotations

import enum
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from claims.datafile import ROOT, Fields, parse_toml, read_toml
from claims.errors import RulesInvalid

RULES_FILE = Path(__file__).resolve().parent / "rules.toml"


class Severity(enum.StrEnum):
    INFO = "info"  # shown, no action
    WARNING = "warning"  # manual review
    BLOCK = "block"  # manual review; must not be paid automatically


# Each rule: the fields its texts may use, and its parameters with their bounds (min, max).
RULE_FIELDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "detail_total_mismatch": ("lines", "total"),
        "line_amount_mismatch": ("line", "code", "name", "price", "quantity", "expected", "amount"),
        "unknown_code": ("line", "code", "name"),
        "item_swapped": (
            "line",
            "code",
            "name",
            "catalogue_name",
            "other_code",
            "other_name",
        ),
        "name_mismatch": ("line", "code", "name", "catalogue_name", "similarity"),
        "class_mismatch": ("line", "code", "name", "billed_class", "catalogue_class"),
        "sex_restricted": ("line", "code", "name", "item_sex", "citizen_sex"),
        "age_restricted": ("line", "code", "name", "ages", "age"),
        "quantity_over_limit": ("code", "name", "quantity", "limit", "period_zh", "period_en"),
        "duplicate_charge": ("line", "code", "name", "day", "other"),
        "readmission": ("earlier", "later", "gap", "other", "diagnosis", "window"),
        "overlapping_stay": (
            "admitted",
            "discharged",
            "other",
            "other_hospital",
            "other_admitted",
            "other_discharged",
        ),
        "verified_often": ("count", "max"),
    }
)
_INT_PARAMS: Mapping[str, Mapping[str, tuple[int, int]]] = MappingProxyType(
    {
        "item_swapped": {"min_similarity_permille": (1, 1000)},
        "name_mismatch": {"min_similarity_permille": (1, 1000)},
        "readmission": {"window_days": (0, 365)},
        "verified_often": {"max_verifications": (0, 1_000_000)},
    }
)
_TEXT_PARAMS: Mapping[str, Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "readmission": {"diagnosis_match": ("category", "exact")},
        "duplicate_charge": {"scope": ("any_hospital", "same_hospital")},
    }
)
_COMMON = ("severity", "enabled", "zh", "en")
#: Rules that only flag (severity ``info``): their input is something anyone can move (anyone
#: may verify any invoice), so a hit must never send someone's claim to review.
FLAG_ONLY = frozenset({"verified_often"})


@dataclass(frozen=True, slots=True)
class Rule:
    """One audit rule's data; ``params`` holds its thresholds by name."""

    code: str
    severity: Severity
    enabled: bool
    zh: str
    en: str
    params: Mapping[str, int | str]

    def int_param(self, name: str) -> int:
        value = self.params[name]
        assert isinstance(value, int)
        return value

    def text_param(self, name: str) -> str:
        return str(self.params[name])


@dataclass(frozen=True)
class AuditRules:
    """Every rule by code; build it with ``load_rules`` or ``rules_from_toml``."""

    rules: Mapping[str, Rule]
    source: str = "<memory>"

    def __getitem__(self, code: str) -> Rule:
        return self.rules[code]

    def enabled(self, code: str) -> bool:
        return self.rules[code].enabled


def load_rules(path: Path = RULES_FILE) -> AuditRules:
    """Reads and validates a rules file (the bundled one by default); raises ``RulesInvalid``."""
    return parse_rules(read_toml(path, RulesInvalid), str(path))


def rules_from_toml(text: str, source: str = "<string>") -> AuditRules:
    return parse_rules(parse_toml(text, source, RulesInvalid), source)


def parse_rules(data: Mapping[str, Any], source: str) -> AuditRules:
    """Validates parsed rules: every rule present once, known keys only, texts that use only
    the rule's fields, thresholds in range. Raises ``RulesInvalid`` listing every problem."""
    f = Fields()
    f.only(data, ("rules",), ROOT)
    table = f.table(data, "rules", ROOT)
    rules: dict[str, Rule] = {}
    if table is not None:
        f.only(table, RULE_FIELDS, "rules")
        for code, fields in RULE_FIELDS.items():
            entry = f.table(table, code, "rules")
            if entry is not None:
                rules[code] = _rule(f, code, fields, entry)
    if f.problems:
        raise RulesInvalid(source, f.problems)
    return AuditRules(MappingProxyType(rules), source)


def _rule(f: Fields, code: str, fields: tuple[str, ...], entry: Mapping[str, Any]) -> Rule:
    path = f"rules.{code}"
    ints = _INT_PARAMS.get(code, {})
    texts = _TEXT_PARAMS.get(code, {})
    f.only(entry, (*_COMMON, *ints, *texts), path)
    severity = f.text(entry, "severity", path, choices=[s.value for s in Severity])
    if code in FLAG_ONLY and severity and severity != Severity.INFO:
        f.bad(f"{path}.severity", "must be info: this rule only flags, anyone can trigger it")
    enabled = f.boolean(entry, "enabled", path, default=True)
    templates = {lang: f.text(entry, lang, path) for lang in ("zh", "en")}
    for lang, template in templates.items():
        for reason in _template_problems(template, fields):
            f.bad(f"{path}.{lang}", reason)
    params: dict[str, int | str] = {}
    for name, (low, high) in ints.items():
        params[name] = f.integer(entry, name, path, minimum=low, maximum=high)
    for name, choices in texts.items():
        params[name] = f.text(entry, name, path, choices=choices)
    return Rule(
        code,
        Severity(severity) if severity else Severity.BLOCK,
        enabled,
        templates["zh"],
        templates["en"],
        MappingProxyType(params),
    )


def _template_problems(template: str, fields: tuple[str, ...]) -> list[str]:
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        return [f"is not a valid template: {exc}"]
    problems = []
    for _, name, _, _ in parsed:
        if name is not None and name not in fields:
            problems.append(
                f"uses unknown field {{{name}}}; available: {', '.join(fields)}"
                if name
                else "uses a positional {} field; name it"
            )
    return problems
