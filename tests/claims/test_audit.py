"""Every smart-audit rule firing and not firing, with the hit's code and severity."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest

from claims import (
    Catalogue,
    CatalogueEntry,
    Citizen,
    ClaimInvoice,
    ClaimLine,
    Hit,
    ItemClass,
    Severity,
    Sex,
    VisitType,
    audit,
    load_rules,
    needs_review,
    rules_from_toml,
)
from claims.rules import RULES_FILE
from tests.claims.factories import ISSUED, invoice

RULES = load_rules()
A, B = ItemClass.A, ItemClass.B

CONSULT = CatalogueEntry("F001102000010000", "普通门诊诊查费", A, 1000, 1000, 1000)
BED3 = CatalogueEntry("F001109000010000", "普通病房床位费(三人间)", A, 4200, 1000, 1000)
BED2 = CatalogueEntry("F001109000010001", "普通病房床位费(双人间)", B, 6000, 1000, 1000)
GYN_US = CatalogueEntry(
    "F002202010040000", "经阴道彩色多普勒超声检查(妇科)", A, 12000, 1000, 1000, Sex.F, 18, None
)
CHILD = CatalogueEntry("F004300000070000", "小儿推拿", A, 2500, 1000, 1000, None, None, 14)
DRUG = CatalogueEntry("XJ01CAB001A002123456789", "阿莫西林胶囊(0.25g)", A, 50, 6000, 42000)
CT = CatalogueEntry("F002103000020000", "X线计算机体层(CT)平扫(胸部)", B, 20000, 1000, 1000)
CATALOGUE = Catalogue([CONSULT, BED3, BED2, GYN_US, CHILD, DRUG, CT])


def item(
    entry: CatalogueEntry,
    quantity: int = 1000,
    *,
    name: str | None = None,
    day: int = 0,
    item_class: ItemClass | None = None,
    amount: int | None = None,
) -> ClaimLine:
    fen = (entry.unit_price_fen * quantity + 500) // 1000 if amount is None else amount
    return ClaimLine(
        entry.code,
        entry.name if name is None else name,
        item_class or entry.item_class,
        entry.unit_price_fen,
        quantity,
        fen,
        "内科",
        ISSUED + timedelta(days=day),
    )


def outpatient(*lines: ClaimLine, total: int | None = None, **kw: object) -> ClaimInvoice:
    body = lines or (item(CONSULT), item(DRUG, 24_000), item(CT))
    return invoice(*body, total_fen=total, **kw)  # type: ignore[arg-type]


def stay(
    admitted: date,
    discharged: date,
    *,
    reference: str = "33082502-0000000001",
    hospital: str = "H33080200001",
    diagnoses: tuple[str, ...] = ("J18.9",),
    lines: tuple[ClaimLine, ...] | None = None,
) -> ClaimInvoice:
    days = (discharged - admitted).days
    body = lines or tuple(
        replace(item(BED3), time=datetime.combine(admitted, ISSUED.timetz()) + timedelta(days=d))
        for d in range(days)
    )
    return invoice(
        *body,
        visit=VisitType.INPATIENT,
        reference=reference,
        hospital=hospital,
        diagnoses=diagnoses,
        admitted_on=admitted,
        discharged_on=discharged,
        issued_at=datetime.combine(discharged, ISSUED.timetz()),
    )


WOMAN = Citizen(Sex.F, date(1980, 6, 15))
MAN = Citizen(Sex.M, date(1980, 6, 15))
STAY = stay(date(2025, 3, 5), date(2025, 3, 10))
OTHER = "33082501-0000000099"

Case = tuple[ClaimInvoice, Citizen, list[ClaimInvoice], int]
# (id, case, expected hits as (code, severity)); each rule at least once firing and once not.
TABLE: list[tuple[str, Case, list[tuple[str, Severity]]]] = [
    ("clean-outpatient", (outpatient(), WOMAN, [], 0), []),
    ("clean-inpatient", (STAY, WOMAN, [], 0), []),
    # detail adds up
    ("total-mismatch", (outpatient(total=22_300), WOMAN, [], 0),
     [("detail_total_mismatch", Severity.BLOCK)]),
    ("line-amount-mismatch", (outpatient(item(CONSULT), item(DRUG, 24_000, amount=1_300)), WOMAN,
                              [], 0), [("line_amount_mismatch", Severity.BLOCK)]),
    ("line-amount-half-fen-rounds-up", (outpatient(item(DRUG, 2_010)), WOMAN, [], 0), []),
    # codes and names (串换)
    ("unknown-code", (outpatient(replace(item(CONSULT), code="F009999999990000")), WOMAN, [], 0),
     [("unknown_code", Severity.BLOCK)]),
    ("name-with-spaces-and-full-stop", (outpatient(item(CONSULT, name=" 普通门诊 诊查费。")),
                                        WOMAN, [], 0), []),
    ("name-with-full-width-brackets", (outpatient(item(DRUG, name="阿莫西林胶囊（0.25ｇ）")),
                                       WOMAN, [], 0), []),
    ("another-items-name", (outpatient(item(BED3, name="普通病房床位费(双人间)")), WOMAN, [], 0),
     [("item_swapped", Severity.BLOCK)]),
    ("closer-to-another-item", (outpatient(item(BED3, name="普通病房床位费（双人间房）")),
                                WOMAN, [], 0), [("item_swapped", Severity.BLOCK)]),
    ("generic-name-no-swap", (outpatient(item(BED3, name="普通病房床位费")), WOMAN, [], 0), []),
    ("name-mismatch", (outpatient(item(CONSULT, name="挂号费")), WOMAN, [], 0),
     [("name_mismatch", Severity.WARNING)]),
    ("class-mismatch", (outpatient(item(CT, item_class=A)), WOMAN, [], 0),
     [("class_mismatch", Severity.BLOCK)]),
    # sex and age at the line date
    ("sex-restricted", (outpatient(item(GYN_US)), MAN, [], 0),
     [("sex_restricted", Severity.BLOCK)]),
    ("sex-fits", (outpatient(item(GYN_US)), WOMAN, [], 0), []),
    ("under-min-age", (outpatient(item(GYN_US)), Citizen(Sex.F, date(2007, 3, 11)), [], 0),
     [("age_restricted", Severity.BLOCK)]),
    ("min-age-on-the-day", (outpatient(item(GYN_US)), Citizen(Sex.F, date(2007, 3, 10)), [], 0),
     []),
    ("max-age-reached", (outpatient(item(CHILD)), Citizen(Sex.M, date(2011, 3, 10)), [], 0),
     [("age_restricted", Severity.BLOCK)]),
    ("under-max-age", (outpatient(item(CHILD)), Citizen(Sex.M, date(2011, 3, 11)), [], 0), []),
    # quantities: per outpatient invoice, per inpatient day
    ("outpatient-over-limit", (outpatient(item(DRUG, 30_000), item(DRUG, 13_000)), WOMAN, [], 0),
     [("quantity_over_limit", Severity.WARNING)]),
    ("outpatient-at-limit", (outpatient(item(DRUG, 30_000), item(DRUG, 12_000)), WOMAN, [], 0),
     []),
    ("inpatient-day-over-limit",
     (stay(date(2025, 3, 5), date(2025, 3, 10), lines=(item(BED3), item(BED3))), WOMAN, [], 0),
     [("quantity_over_limit", Severity.WARNING)]),
    ("inpatient-days-at-limit",
     (stay(date(2025, 3, 5), date(2025, 3, 10), lines=(item(BED3), item(BED3, day=1))),
      WOMAN, [], 0), []),
    # history: the same item on the same day on another invoice (重复收费)
    ("duplicate-charge", (outpatient(), WOMAN, [outpatient(item(CONSULT), reference=OTHER)], 0),
     [("duplicate_charge", Severity.WARNING)]),
    ("duplicate-charge-at-another-hospital",
     (outpatient(), WOMAN, [outpatient(item(CONSULT), reference=OTHER, hospital="H2")], 0),
     [("duplicate_charge", Severity.WARNING)]),
    ("same-item-another-day",
     (outpatient(), WOMAN, [outpatient(item(CONSULT, day=1), reference=OTHER)], 0), []),
    ("same-invoice-in-history", (outpatient(), WOMAN, [outpatient()], 0), []),
    # history: readmission within 15 days with the same diagnosis (分解住院)
    ("readmission-15-days",
     (STAY, WOMAN, [stay(date(2025, 2, 10), date(2025, 2, 18), reference=OTHER,
                         diagnoses=("J18.1",))], 0),
     [("readmission", Severity.WARNING)]),
    ("readmission-16-days",
     (STAY, WOMAN, [stay(date(2025, 2, 10), date(2025, 2, 17), reference=OTHER)], 0), []),
    ("readmission-other-diagnosis",
     (STAY, WOMAN, [stay(date(2025, 2, 10), date(2025, 2, 18), reference=OTHER,
                         diagnoses=("I10",))], 0), []),
    ("readmission-later-stay-in-history",
     (STAY, WOMAN, [stay(date(2025, 3, 20), date(2025, 3, 25), reference=OTHER)], 0),
     [("readmission", Severity.WARNING)]),
    # history: overlapping stays at two hospitals
    ("overlapping-stay",
     (STAY, WOMAN, [stay(date(2025, 3, 8), date(2025, 3, 12), reference=OTHER,
                         hospital="H33080300002", diagnoses=("I10",),
                         lines=(item(BED2, day=-2),))], 0),
     [("overlapping_stay", Severity.BLOCK)]),
    ("overlapping-stay-billing-the-same-beds",
     (STAY, WOMAN, [stay(date(2025, 3, 8), date(2025, 3, 12), reference=OTHER,
                         hospital="H33080300002", diagnoses=("I10",))], 0),
     [("duplicate_charge", Severity.WARNING), ("duplicate_charge", Severity.WARNING),
      ("overlapping_stay", Severity.BLOCK)]),
    ("overlapping-stay-same-hospital",
     (STAY, WOMAN, [stay(date(2025, 3, 8), date(2025, 3, 12), reference=OTHER,
                         diagnoses=("I10",), lines=(item(BED2, day=-2),))], 0), []),
    ("transfer-on-discharge-day",
     (STAY, WOMAN, [stay(date(2025, 3, 10), date(2025, 3, 12), reference=OTHER,
                         hospital="H33080300002", diagnoses=("I10",))], 0), []),
    # verified unusually often
    ("verified-21-times", (outpatient(), WOMAN, [], 21), [("verified_often", Severity.INFO)]),
    ("verified-20-times", (outpatient(), WOMAN, [], 20), []),
]  # fmt: skip


@pytest.mark.parametrize(("case", "expected"), [r[1:] for r in TABLE], ids=[r[0] for r in TABLE])
def test_rule(case: Case, expected: list[tuple[str, Severity]]) -> None:
    claim, citizen, history, count = case
    hits = audit(claim, citizen, CATALOGUE, history, count, RULES)
    assert [(h.code, h.severity) for h in hits] == expected
    assert needs_review(hits) == any(severity is not Severity.INFO for _, severity in expected)
    for hit in hits:
        assert hit.zh and hit.en and "{" not in hit.zh + hit.en


def test_every_rule_has_a_firing_row() -> None:
    fired = {code for _, _, expected in TABLE for code, _ in expected}
    assert fired == set(RULES.rules)


def test_hits_point_at_the_line_and_the_other_invoice() -> None:
    claim = outpatient(item(CONSULT), item(BED3, name="普通病房床位费(双人间)"))
    (swap,) = audit(claim, WOMAN, CATALOGUE, [], 0, RULES)
    assert swap.line_index == 1
    assert "F001109000010001" in swap.en and "普通病房床位费(双人间)" in swap.zh
    (dup,) = audit(
        outpatient(), WOMAN, CATALOGUE, [outpatient(item(CONSULT), reference=OTHER)], 0, RULES
    )
    assert (dup.line_index, dup.related_reference) == (0, OTHER)
    assert (
        dup.zh == f"第 1 行「普通门诊诊查费」于 2025-03-10 已在票据 {OTHER} 中收费，疑似重复收费。"
    )


def test_one_hit_per_code_not_per_line() -> None:
    lines = tuple(item(CT, item_class=A) for _ in range(5))
    hits = audit(outpatient(*lines), WOMAN, CATALOGUE, [], 0, RULES)
    assert [h.code for h in hits] == ["class_mismatch", "quantity_over_limit"]


def _rules(edit: Callable[[str], str]) -> object:
    return rules_from_toml(edit(RULES_FILE.read_text(encoding="utf-8")))


def test_thresholds_and_switches_are_data() -> None:
    text = RULES_FILE.read_text(encoding="utf-8")
    lenient = rules_from_toml(
        text.replace("window_days = 15", "window_days = 30")
        .replace("max_verifications = 20", "max_verifications = 50")
        .replace('[rules.class_mismatch]\nseverity = "block"', '[rules.class_mismatch]\nseverity'
                 ' = "block"\nenabled = false')
    )  # fmt: skip
    history = [stay(date(2025, 1, 20), date(2025, 2, 1), reference=OTHER)]  # 32 days before
    assert audit(STAY, WOMAN, CATALOGUE, history, 21, lenient) == []
    history = [stay(date(2025, 1, 20), date(2025, 2, 3), reference=OTHER)]  # 30 days before
    assert [h.code for h in audit(STAY, WOMAN, CATALOGUE, history, 51, lenient)] == [
        "readmission",
        "verified_often",
    ]
    assert audit(outpatient(item(CT, item_class=A)), WOMAN, CATALOGUE, [], 0, lenient) == []
    same = rules_from_toml(text.replace('scope = "any_hospital"', 'scope = "same_hospital"'))
    elsewhere = [outpatient(item(CONSULT), reference=OTHER, hospital="H2")]
    assert audit(outpatient(), WOMAN, CATALOGUE, elsewhere, 0, same) == []
    here = [outpatient(item(CONSULT), reference=OTHER)]
    assert [h.code for h in audit(outpatient(), WOMAN, CATALOGUE, here, 0, same)] == [
        "duplicate_charge"
    ]
    exact = rules_from_toml(
        text.replace('diagnosis_match = "category"', 'diagnosis_match = "exact"')
    )
    history = [stay(date(2025, 2, 10), date(2025, 2, 18), reference=OTHER, diagnoses=("J18.1",))]
    assert audit(STAY, WOMAN, CATALOGUE, history, 0, exact) == []


def test_info_hits_do_not_need_review() -> None:
    info = Hit("verified_often", Severity.INFO, "z", "e")
    assert not needs_review([info])
    assert needs_review([info, Hit("x", Severity.WARNING, "z", "e")])
    assert needs_review([Hit("x", Severity.BLOCK, "z", "e")])
    assert not needs_review([])


def test_a_plain_mapping_catalogue_works_too() -> None:
    plain = {entry.code: entry for entry in CATALOGUE.values()}
    claim = outpatient(item(BED3, name="普通病房床位费(双人间)"))
    assert [h.code for h in audit(claim, WOMAN, plain, [], 0, RULES)] == ["item_swapped"]
