"""docs/claims.md is true: its example policy loads, its worked example and its rules table
match what the code computes and what claims/rules.toml says."""

from __future__ import annotations

import json
import re
from datetime import date, datetime

from claims import (
    Citizen,
    ClaimInvoice,
    ClaimLine,
    HospitalLevel,
    ItemClass,
    Sex,
    VisitType,
    bundled_policies,
    chain_payers,
    in_chain_order,
    load_policy,
    load_rules,
    policy_from_toml,
)
from claims.policy import POLICY_DIR
from tests.conftest import ROOT

DOC = (ROOT / "docs" / "claims.md").read_text(encoding="utf-8")


def block(name: str) -> str:
    match = re.search(rf"<!-- example:{name} -->\s*```[a-z]*\n(.*?)```", DOC, re.S)
    assert match, f"example {name} missing"
    return match.group(1)


def test_example_policy_loads_and_is_the_bundled_basic_policy() -> None:
    example = policy_from_toml(block("policy"), "docs/claims.md")
    bundled = load_policy(POLICY_DIR / "basic.toml")
    assert example == policy_from_toml(
        (POLICY_DIR / "basic.toml").read_text(encoding="utf-8"), "docs/claims.md"
    )
    assert (example.payer, example.benefits, example.classes) == (
        bundled.payer,
        bundled.benefits,
        bundled.classes,
    )


def test_worked_example() -> None:
    claim = json.loads(block("claim"))
    issued = datetime.fromisoformat(claim["issued_at"])
    lines = tuple(
        ClaimLine(f"F00110200001000{i}", "项目", ItemClass(k), fen, 1000, fen, "内科", issued)
        for i, (k, fen) in enumerate(claim["lines"])
    )
    invoice = ClaimInvoice(
        reference="33082502-0000000042",
        hospital="H33080200001",
        hospital_level=HospitalLevel[claim["hospital_level"].upper()],
        visit_type=VisitType(claim["visit_type"]),
        issued_at=issued,
        total_fen=sum(line.amount_fen for line in lines),
        lines=lines,
        admitted_on=date(2025, 5, 25),
        discharged_on=issued.date(),
        claimed_at=datetime.fromisoformat(claim["claimed_at"]),
    )
    citizen = Citizen(Sex.F, date(1950, 1, 1), frozenset(claim["citizen_flags"]))
    results = chain_payers(in_chain_order(bundled_policies().values()), invoice, citizen, {})
    stated = [row.split() for row in block("chain").strip().splitlines()]
    assert [[r.payer, str(r.amount_fen), r.reason_code] for r in results] == stated
    assert invoice.total_fen - sum(r.amount_fen for r in results) == 96_146  # "citizen pays"


def test_rules_table_lists_every_rule_with_its_severity() -> None:
    table = DOC.split("<!-- rules-table -->", 1)[1].split("\n\n", 1)[0]
    rows = re.findall(r"^\| `([a-z_]+)` \| (info|warning|block) \|", table, re.M)
    rules = load_rules()
    assert dict(rows) == {code: rule.severity.value for code, rule in rules.rules.items()}
    for code, rule in rules.rules.items():
        for name, value in rule.params.items():
            shown = f"`{name}` {value}" in table or name in ("scope", "diagnosis_match")
            assert shown, (code, name)
