"""docs/claims.md is true: its example policy loads, its worked examples and its rules table
match what the code computes and what claims/rules.toml says."""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta

import pytest

from claims import (
    Citizen,
    ClaimInvoice,
    ClaimLine,
    HospitalLevel,
    ItemClass,
    Scheme,
    Sex,
    TillSplit,
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


@pytest.mark.parametrize("name", ["employee", "resident", "none", "manual"])
def test_worked_example_with_the_till_split(name: str) -> None:
    claim = json.loads(block(f"till-{name}"))
    issued = datetime.fromisoformat(claim["issued_at"])
    visit = VisitType(claim["visit_type"])
    lines = tuple(
        ClaimLine(f"F00110200001000{i}", "项目", ItemClass(k), fen, 1000, fen, "内科", issued)
        for i, (k, fen) in enumerate(claim["lines"])
    )
    till = TillSplit(**claim["till"])
    stay = (issued.date() - timedelta(days=10), issued.date())
    invoice = ClaimInvoice(
        reference="33060125-0000000042",
        hospital="H33080200001",
        hospital_level=HospitalLevel[claim["hospital_level"].upper()],
        visit_type=visit,
        issued_at=issued,
        total_fen=till.total_fen,
        lines=lines,
        admitted_on=stay[0] if visit is VisitType.INPATIENT else None,
        discharged_on=stay[1] if visit is VisitType.INPATIENT else None,
        claimed_at=datetime.fromisoformat(claim["claimed_at"]),
        scheme=Scheme(claim["scheme"]),
        till=till,
    )
    assert invoice.lines_fen == invoice.total_fen  # the example's lines are the bill's
    citizen = Citizen(Sex.F, date(1960, 1, 1), frozenset(claim["citizen_flags"]))
    results = chain_payers(in_chain_order(bundled_policies().values()), invoice, citizen, {})
    *stated, (who, left, what) = [row.split() for row in block(f"till-{name}-chain").splitlines()]
    assert [[r.payer, str(r.amount_fen), r.reason_code] for r in results] == stated
    assert (who, what) == ("citizen", "cash_left")
    assert till.cash_fen - sum(r.amount_fen for r in results) == int(left)
    # The prose states the same figures: every payer's bold amount and what the citizen keeps.
    section = DOC.split(f"<!-- example:till-{name} -->", 1)[1].split("-chain -->", 1)[0]
    bold = [int(x.replace(",", "")) for x in re.findall(r"\*\*([\d,]+)\*\*", section)]
    assert bold == [r.amount_fen for r in results]
    assert re.search(rf"left with [^.]*?\b{int(left):,} fen", section), section
    if name == "employee":  # the explanations table quotes this example's co-payment step
        row = re.search(r"^\| `scheme`, `till`, `share`.*?\| (.*?) \| (.*?) \|$", DOC, re.M)
        assert row, "the till codes' row of the explanations table"
        copay = next(n for n in results[1].steps if n.code == "share")
        assert (copay.zh, copay.en) == row.groups()


def test_rules_table_lists_every_rule_with_its_severity() -> None:
    table = DOC.split("<!-- rules-table -->", 1)[1].split("\n\n", 1)[0]
    rows = re.findall(r"^\| `([a-z_]+)` \| (info|warning|block) \|", table, re.M)
    rules = load_rules()
    assert dict(rows) == {code: rule.severity.value for code, rule in rules.rules.items()}
    for code, rule in rules.rules.items():
        for name, value in rule.params.items():
            shown = f"`{name}` {value}" in table or name in ("scope", "diagnosis_match")
            assert shown, (code, name)
