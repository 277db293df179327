"""Policy and rules files: the bundled ones load; malformed ones are refused with the file, the
key path and the reason."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from claims import (
    Basis,
    HospitalLevel,
    ItemClass,
    PolicyInvalid,
    PolicyKind,
    RulesInvalid,
    Scheme,
    Severity,
    Share,
    TillChannel,
    bundled_policies,
    in_chain_order,
    load_policies,
    load_policy,
    load_rules,
    policy_from_toml,
    rules_from_toml,
)
from claims.policy import POLICY_DIR, Coverage
from claims.rules import RULE_FIELDS, RULES_FILE
from tests.claims.factories import (
    BASIC,
    BASIC_SCHEMES,
    COMMERCIAL,
    COMMERCIAL_SCHEMES,
    CRITICAL,
    CRITICAL_SCHEMES,
)

BUNDLED_FILES = sorted(POLICY_DIR.glob("*.toml"))


@pytest.mark.parametrize("path", BUNDLED_FILES, ids=[p.stem for p in BUNDLED_FILES])
def test_each_bundled_policy_loads(path: Path) -> None:
    policy = load_policy(path)
    assert policy.payer == path.stem  # convention: the file is named after the payer
    assert policy.source == str(path)
    assert set(policy.classes) == set(ItemClass)
    assert policy.deadline_days > 0


def test_bundled_policies_form_the_chain() -> None:
    policies = bundled_policies()
    assert set(policies) == {"basic", "critical", "assistance", "commercial"}
    assert [p.payer for p in in_chain_order(policies.values())] == [
        "basic",
        "critical",
        "assistance",
        "commercial",
    ]
    basic = policies["basic"]
    assert basic.kind is PolicyKind.BASIC
    inpatient = basic.benefits["inpatient"]
    assert [inpatient.ratio_bp.at(level) for level in HospitalLevel] == [9000, 8000, 7000, 6000]
    assert basic.classes[ItemClass.B].self_pay_share_bp == 1000
    assert policies["commercial"].classes[ItemClass.C].coverage is Coverage.OUT_OF_POLICY
    assert policies["assistance"].eligible_flags == {"low_income", "extreme_poverty",
                                                     "near_low_income"}  # fmt: skip


def _edit(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text, old
        return text.replace(old, new, 1)

    return edit


# (id, base text, edit, key path, reason pattern)
MALFORMED = [
    ("missing-key", BASIC, _edit("deadline_days = 365\n", ""), "deadline_days",
     "is required"),
    ("negative-ratio", CRITICAL, _edit("ratio_bp = 5000", "ratio_bp = -100"),
     "benefits.all.ratio_bp", "must not be negative, got -100"),
    ("ratio-over-100%", CRITICAL, _edit("ratio_bp = 5000", "ratio_bp = 12000"),
     "benefits.all.ratio_bp", r"must be at most 10000 bp \(100%\), got 12000"),
    ("level-ratio-over-100%", BASIC, _edit("tertiary = 6500", "tertiary = 10001"),
     "benefits.inpatient.ratio_bp.tertiary", "must be at most 10000 bp"),
    ("share-over-100%", BASIC, _edit("self_pay_share_bp = 1000", "self_pay_share_bp = 10500"),
     "classes.B.self_pay_share_bp", "must be at most 10000 bp"),
    ("unknown-class", CRITICAL, _edit('self = {', 'D = { coverage = "excluded" }\nself = {'),
     "classes.D", "unknown catalogue class 'D'; expected one of A, B, C, self"),
    ("missing-class", CRITICAL, _edit('self = { coverage = "excluded" }', ""), "classes.self",
     "is required"),
    ("wrong-type-string", CRITICAL, _edit("deductible_fen = 100_000", 'deductible_fen = "1000"'),
     "benefits.all.deductible_fen", "must be an integer, got string '1000'"),
    ("wrong-type-float", CRITICAL, _edit("cap_fen = 300_000", "cap_fen = 3000.5"),
     "benefits.all.cap_fen", r"must be an integer \(money is integer fen"),
    ("wrong-type-bool", CRITICAL, _edit("deadline_days = 365", "deadline_days = true"),
     "deadline_days", "must be an integer, got boolean True"),
    ("wrong-type-table", CRITICAL, _edit("[classes]", "classes = 1\n[other]"),
     "classes", "must be a table, got integer 1"),
    ("typo-key", CRITICAL, _edit("ratio_bp = 5000", "ratio_pb = 5000"),
     "benefits.all.ratio_pb", "unknown key"),
    ("unknown-level", BASIC, _edit("township = 9000", "quaternary = 9000"),
     "benefits.outpatient.ratio_bp.quaternary", "unknown hospital level 'quaternary'"),
    ("unknown-coverage", CRITICAL, _edit('C = { coverage = "excluded" }',
                                         'C = { coverage = "partial" }'),
     "classes.C.coverage", "must be one of 'in_policy', 'out_of_policy', 'excluded'"),
    ("share-on-excluded", CRITICAL, _edit('C = { coverage = "excluded" }',
                                          'C = { coverage = "excluded", self_pay_share_bp = 10 }'),
     "classes.C.self_pay_share_bp", "applies only to coverage 'in_policy'"),
    ("all-and-outpatient", CRITICAL, _edit("[benefits.all]", "[benefits.outpatient]\ndeductible_fen"
                                           " = 0\nratio_bp = 1\ncap_fen = 1\n[benefits.all]"),
     "benefits", "either 'all', or both"),
    ("only-outpatient", BASIC, _edit("[benefits.inpatient]", "[unused]"), "benefits",
     "needs 'all', or both 'outpatient' and 'inpatient'"),
    ("unknown-kind", CRITICAL, _edit('kind = "critical_illness"', 'kind = "lottery"'), "kind",
     "must be one of 'basic'"),
    ("bad-payer-id", CRITICAL, _edit('payer = "critical"', 'payer = "Critical Care"'), "payer",
     "lower-case"),
    ("out-of-policy-ratio-unused", CRITICAL, _edit("cap_fen = 300_000",
                                                   "cap_fen = 300_000\nout_of_policy_ratio_bp = 1"),
     "benefits.all.out_of_policy_ratio_bp", "has no effect"),
    ("flags-not-strings", CRITICAL, _edit("deadline_days = 365",
                                          "deadline_days = 365\neligible_flags = [1]"),
     r"eligible_flags\[0\]", "must be a non-empty string"),
    ("not-toml", CRITICAL, _edit("[classes]", "[classes"), r"\$", "is not valid TOML"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "edit", "key_path", "reason"),
    [row[1:] for row in MALFORMED],
    ids=[row[0] for row in MALFORMED],
)
def test_malformed_policy_names_file_key_and_reason(
    tmp_path: Path, text: str, edit: Callable[[str], str], key_path: str, reason: str
) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(edit(text), encoding="utf-8")
    with pytest.raises(PolicyInvalid) as caught:
        load_policy(path)
    error = caught.value
    assert error.source == str(path)
    assert str(error).startswith(f"{path}: ")
    assert any(
        re.fullmatch(key_path, p.key_path) and re.search(reason, p.reason) for p in error.problems
    ), error.problems


WITH_SCHEMES = {
    "basic": BASIC + BASIC_SCHEMES,
    "critical": CRITICAL + CRITICAL_SCHEMES,
    "commercial": COMMERCIAL + COMMERCIAL_SCHEMES,
}
# (id, policy, edit, key path, reason pattern)
MALFORMED_SCHEMES = [
    ("unknown-scheme", "basic", _edit("[schemes.resident]", "[schemes.retired]"),
     "schemes.retired", "unknown key; expected one of employee, none, resident"),
    ("unknown-section-key", "basic", _edit('till_channel = "fund"\n\n[schemes.employee.',
                                           'till_channel = "fund"\nratio_bp = 1\n\n'
                                           '[schemes.employee.'),
     "schemes.employee.ratio_bp", "unknown key"),
    ("bad-till-channel", "basic", _edit('till_channel = "fund"', 'till_channel = "cash"'),
     "schemes.employee.till_channel", "must be one of 'fund', 'other', got 'cash'"),
    ("unknown-share", "critical", _edit('self_pay = { coverage = "excluded" }\n\n'
                                        '[schemes.employee.benefits',
                                        'self_pay = { coverage = "excluded" }\ncash = {}\n\n'
                                        '[schemes.employee.benefits'),
     "schemes.employee.shares.cash", "unknown patient's share 'cash'; expected one of copay, "
     "deductible, self_pay"),
    ("missing-share", "critical", _edit('self_pay = { coverage = "excluded" }\n\n'
                                        '[schemes.employee.benefits',
                                        '\n[schemes.employee.benefits'),
     "schemes.employee.shares.self_pay", "is required"),
    ("bad-share-coverage", "commercial", _edit('self_pay = { coverage = "out_of_policy" }',
                                               'self_pay = { coverage = "half" }'),
     "schemes.employee.shares.self_pay.coverage", "must be one of 'in_policy'"),
    ("share-self-pay-ratio", "commercial", _edit('self_pay = { coverage = "out_of_policy" }',
                                                 'self_pay = { coverage = "out_of_policy", '
                                                 'self_pay_share_bp = 10 }'),
     "schemes.employee.shares.self_pay.self_pay_share_bp", "unknown key"),
    ("section-ratio-over-100%", "critical", _edit("ratio_bp = 5000\ncap_fen = 300_000\n\n"
                                                  "[schemes.resident]",
                                                  "ratio_bp = 10001\ncap_fen = 300_000\n\n"
                                                  "[schemes.resident]"),
     "schemes.employee.benefits.all.ratio_bp", "must be at most 10000 bp"),
    ("section-out-of-policy-unused", "critical", _edit("cap_fen = 300_000\n\n[schemes.resident]",
                                                       "cap_fen = 300_000\nout_of_policy_ratio_bp"
                                                       " = 1\n\n[schemes.resident]"),
     "schemes.employee.benefits.all.out_of_policy_ratio_bp", "has no effect"),
    ("section-one-pool", "basic", _edit("[schemes.employee.benefits.inpatient]", "[unused]"),
     "schemes.employee.benefits", "needs 'all', or both 'outpatient' and 'inpatient'"),
    ("section-classes-incomplete", "basic", _edit('[schemes.resident]\n',
                                                  '[schemes.resident]\nclasses = { A = { '
                                                  'coverage = "in_policy" } }\n'),
     "schemes.resident.classes.B", "is required"),
    ("section-name-empty", "basic", _edit('name_zh = "测试职工医保"', 'name_zh = ""'),
     "schemes.employee.name_zh", "must be a non-empty string"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("payer", "edit", "key_path", "reason"),
    [row[1:] for row in MALFORMED_SCHEMES],
    ids=[row[0] for row in MALFORMED_SCHEMES],
)
def test_malformed_scheme_section(
    payer: str, edit: Callable[[str], str], key_path: str, reason: str
) -> None:
    assert policy_from_toml(WITH_SCHEMES[payer], "good.toml").schemes  # the base is good
    with pytest.raises(PolicyInvalid) as caught:
        policy_from_toml(edit(WITH_SCHEMES[payer]), "sections.toml")
    assert any(
        re.fullmatch(key_path, p.key_path) and re.search(reason, p.reason)
        for p in caught.value.problems
    ), caught.value.problems


def test_schemes_must_be_a_table() -> None:
    with pytest.raises(PolicyInvalid, match="schemes: must be a table, got string 'all'"):
        policy_from_toml('schemes = "all"\n' + COMMERCIAL, "flat.toml")


def test_a_section_takes_what_it_leaves_out_from_the_top_level() -> None:
    policy = policy_from_toml(WITH_SCHEMES["basic"], "basic.toml")
    employee, resident = policy.schemes[Scheme.EMPLOYEE], policy.schemes[Scheme.RESIDENT]
    assert Scheme.NONE not in policy.schemes
    assert (employee.name_zh, resident.name_zh) == ("测试职工医保", "测试基本医保")
    assert employee.classes == resident.classes == policy.classes
    assert employee.annual_cap_fen == resident.annual_cap_fen == 1_000_000
    assert employee.till_channel is resident.till_channel is TillChannel.FUND
    assert employee.basis is Basis.LINES and employee.shares == {}
    # the residents' benefits are the top level's, in pools of their own
    assert {k: b.pool for k, b in resident.benefits.items()} == {
        "outpatient": "resident.outpatient",
        "inpatient": "resident.inpatient",
    }
    assert [b.ratio_bp for b in resident.benefits.values()] == [
        b.ratio_bp for b in policy.benefits.values()
    ]
    assert employee.benefits["inpatient"].ratio_bp.at(HospitalLevel.PRIMARY) == 9000
    critical = policy_from_toml(WITH_SCHEMES["critical"], "critical.toml")
    assert critical.schemes[Scheme.RESIDENT].basis is Basis.SHARES
    assert dict(critical.schemes[Scheme.RESIDENT].shares) == {
        Share.COPAY: Coverage.IN_POLICY,
        Share.DEDUCTIBLE: Coverage.IN_POLICY,
        Share.SELF_PAY: Coverage.EXCLUDED,
    }
    assert (
        critical.schemes[Scheme.RESIDENT].benefits["all"].deductible_fen.at(HospitalLevel.TOWNSHIP)
        == 100_000
    )


def test_the_only_outpatient_layout_is_refused() -> None:
    text = BASIC[: BASIC.index("[benefits.inpatient]")]
    with pytest.raises(PolicyInvalid, match="benefits: needs 'all', or both"):
        policy_from_toml(text, "one-pool.toml")


def test_every_problem_is_reported_at_once() -> None:
    text = CRITICAL.replace("ratio_bp = 5000", "ratio_bp = 12000").replace("cap_fen = 300_000", "")
    with pytest.raises(PolicyInvalid) as caught:
        policy_from_toml(text, "two-problems.toml")
    assert [p.key_path for p in caught.value.problems] == [
        "benefits.all.ratio_bp",
        "benefits.all.cap_fen",
    ]
    assert str(caught.value).startswith("two-problems.toml: benefits.all.ratio_bp: ")


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyInvalid, match=r"missing\.toml: \$: cannot be read"):
        load_policy(tmp_path / "missing.toml")


def test_two_files_for_one_payer(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(COMMERCIAL, encoding="utf-8")
    (tmp_path / "b.toml").write_text(COMMERCIAL, encoding="utf-8")
    with pytest.raises(PolicyInvalid, match=r"b\.toml: payer: 'commercial' is already defined"):
        load_policies(tmp_path)


def test_bundled_rules_load() -> None:
    rules = load_rules()
    assert set(rules.rules) == set(RULE_FIELDS)
    assert rules["readmission"].int_param("window_days") == 15
    assert rules["verified_often"].int_param("max_verifications") == 20
    assert rules["item_swapped"].severity is Severity.BLOCK


RULES_TEXT = RULES_FILE.read_text(encoding="utf-8")
MALFORMED_RULES = [
    ("unknown-rule", _edit("[rules.unknown_code]", "[rules.unknown_cod]"), "rules.unknown_cod",
     "unknown key"),
    ("missing-rule", _edit("[rules.unknown_code]", "[ignored.unknown_code]"), "rules.unknown_code",
     "is required"),
    ("bad-severity", _edit('severity = "warning"', 'severity = "fatal"'), "rules.name_mismatch"
     ".severity", "must be one of 'info', 'warning', 'block'"),
    ("unknown-field-in-text", _edit("已被查验 {count} 次", "已被查验 {times} 次"),
     "rules.verified_often.zh", r"uses unknown field \{times\}"),
    ("threshold-too-high", _edit("min_similarity_permille = 800", "min_similarity_permille = 1200"),
     "rules.name_mismatch.min_similarity_permille", "must be at most 1000"),
    ("threshold-negative", _edit("window_days = 15", "window_days = -1"),
     "rules.readmission.window_days", "must not be negative"),
    ("threshold-wrong-type", _edit("window_days = 15", 'window_days = "15"'),
     "rules.readmission.window_days", "must be an integer, got string"),
    ("unknown-param", _edit("window_days = 15", "window_days = 15\nwindow_hours = 2"),
     "rules.readmission.window_hours", "unknown key"),
    ("bad-choice", _edit('diagnosis_match = "category"', 'diagnosis_match = "fuzzy"'),
     "rules.readmission.diagnosis_match", "must be one of 'category', 'exact'"),
    ("flag-sends-to-review", _edit('severity = "info"', 'severity = "warning"'),
     "rules.verified_often.severity", "must be info"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("edit", "key_path", "reason"),
    [row[1:] for row in MALFORMED_RULES],
    ids=[row[0] for row in MALFORMED_RULES],
)
def test_malformed_rules(edit: Callable[[str], str], key_path: str, reason: str) -> None:
    with pytest.raises(RulesInvalid) as caught:
        rules_from_toml(edit(RULES_TEXT), "rules.toml")
    assert caught.value.source == "rules.toml"
    assert any(
        p.key_path == key_path and re.search(reason, p.reason) for p in caught.value.problems
    ), caught.value.problems
