"""Smart audit (智能审核): checks of one invoice against the catalogue, the citizen and history.

``audit`` runs every enabled rule of ``claims/rules.toml`` and returns its hits; a warning or a
block sends the claim to manual review (``needs_review``). A rule reports one hit per distinct
finding (per catalogue code for line rules, per other invoice for history rules), pointing at
the first line concerned, so a thousand-line stay does not drown the reviewer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from claims.model import Catalogue, CatalogueEntry, Citizen, ClaimInvoice, ClaimLine, VisitType
from claims.money import yuan
from claims.names import normalise_name, similarity_permille
from claims.rules import AuditRules, Rule, Severity

REVIEW_SEVERITIES = frozenset({Severity.WARNING, Severity.BLOCK})


@dataclass(frozen=True, slots=True)
class Hit:
    """One finding: the rule's code and severity, the reason in Chinese and English, the first
    line concerned (0-based) and the other invoice involved, when there is one."""

    code: str
    severity: Severity
    zh: str
    en: str
    line_index: int | None = None
    related_reference: str | None = None


def needs_review(hits: Iterable[Hit]) -> bool:
    """Whether any hit is a warning or a block: the claim goes to manual review."""
    return any(hit.severity in REVIEW_SEVERITIES for hit in hits)


def audit(
    invoice: ClaimInvoice,
    citizen: Citizen,
    catalogue: Mapping[str, CatalogueEntry],
    history: Sequence[ClaimInvoice],
    verification_count: int,
    rules: AuditRules,
) -> list[Hit]:
    """Every hit of every enabled rule, in a fixed order: detail, catalogue, patient,
    quantities, history, verification count.

    ``history`` is the citizen's other valid (not voided) invoices; the invoice itself, if
    present, is skipped by reference. ``verification_count`` is how often the invoice was
    verified. Pass a ``Catalogue`` built once: a plain mapping is indexed on every call.
    """
    index = catalogue if isinstance(catalogue, Catalogue) else Catalogue(catalogue.values())
    others = [other for other in history if other.reference != invoice.reference]
    run = _Run(rules)
    _detail(run, invoice)
    _catalogue(run, invoice, index)
    _patient(run, invoice, citizen, index)
    _quantities(run, invoice, index)
    _duplicates(run, invoice, others)
    _stays(run, invoice, others)
    if run.on("verified_often"):
        limit = rules["verified_often"].int_param("max_verifications")
        if verification_count > limit:
            run.hit("verified_often", None, None, count=verification_count, max=limit)
    return run.hits


class _Run:
    """Collects hits, formatting each rule's texts."""

    def __init__(self, rules: AuditRules) -> None:
        self.rules = rules
        self.hits: list[Hit] = []

    def on(self, code: str) -> bool:
        return self.rules.enabled(code)

    def rule(self, code: str) -> Rule:
        return self.rules[code]

    def hit(
        self, code: str, line_index: int | None, related: str | None, /, **fields: object
    ) -> None:
        rule = self.rules[code]
        self.hits.append(
            Hit(
                code,
                rule.severity,
                rule.zh.format(**fields),
                rule.en.format(**fields),
                line_index,
                related,
            )
        )


def _quantity(milli: int) -> str:
    whole, rest = divmod(milli, 1000)
    return str(whole) if rest == 0 else f"{whole}.{rest:03d}".rstrip("0")


def _first_per_code(lines: Sequence[ClaimLine]) -> list[tuple[int, ClaimLine]]:
    seen: set[str] = set()
    out = []
    for i, line in enumerate(lines):
        if line.code not in seen:
            seen.add(line.code)
            out.append((i, line))
    return out


# -- the detail adds up (虚构明细) ------------------------------------------------------------


def _detail(run: _Run, invoice: ClaimInvoice) -> None:
    if run.on("detail_total_mismatch") and invoice.lines_fen != invoice.total_fen:
        run.hit(
            "detail_total_mismatch",
            None,
            None,
            lines=yuan(invoice.lines_fen),
            total=yuan(invoice.total_fen),
        )
    if run.on("line_amount_mismatch"):
        for i, line in enumerate(invoice.lines):
            # unit price x quantity, rounded half up to the fen: the till's rounding.
            expected = (line.unit_price_fen * line.quantity_milli + 500) // 1000
            if expected != line.amount_fen:
                run.hit(
                    "line_amount_mismatch",
                    i,
                    None,
                    line=i + 1,
                    code=line.code,
                    name=line.name,
                    price=yuan(line.unit_price_fen),
                    quantity=_quantity(line.quantity_milli),
                    expected=yuan(expected),
                    amount=yuan(line.amount_fen),
                )


# -- codes, names and classes (串换) -----------------------------------------------------------


def _catalogue(run: _Run, invoice: ClaimInvoice, catalogue: Catalogue) -> None:
    for i, line in _first_per_code(invoice.lines):
        entry = catalogue.get(line.code)
        fields = {"line": i + 1, "code": line.code, "name": line.name}
        if entry is None:
            if run.on("unknown_code"):
                run.hit("unknown_code", i, None, **fields)
            continue
        _name(run, i, line, entry, catalogue)
        if run.on("class_mismatch") and line.item_class is not entry.item_class:
            run.hit(
                "class_mismatch",
                i,
                None,
                billed_class=line.item_class.value,
                catalogue_class=entry.item_class.value,
                **fields,
            )


def _name(run: _Run, i: int, line: ClaimLine, entry: CatalogueEntry, catalogue: Catalogue) -> None:
    name = normalise_name(line.name)
    own_name = catalogue.normalised_name(entry.code)
    if name == own_name:  # the usual case: nothing to compare
        return
    own = similarity_permille(name, own_name)
    fields = {"line": i + 1, "code": line.code, "name": line.name, "catalogue_name": entry.name}
    if run.on("item_swapped"):
        threshold = run.rule("item_swapped").int_param("min_similarity_permille")
        other = _closest_other(name, entry.code, catalogue, max(own + 1, threshold))
        if other is not None:
            run.hit(
                "item_swapped",
                i,
                None,
                other_code=other[0].code,
                other_name=other[0].name,
                **fields,
            )
            return
    threshold = run.rule("name_mismatch").int_param("min_similarity_permille")
    if run.on("name_mismatch") and own < threshold:
        run.hit("name_mismatch", i, None, similarity=own, **fields)


def _closest_other(
    name: str, code: str, catalogue: Catalogue, at_least: int
) -> tuple[CatalogueEntry, int] | None:
    """The other catalogue entry whose name is the closest to ``name`` with a similarity of at
    least ``at_least`` per mille (an exact match first), or None."""
    for entry in catalogue.named(name):
        if entry.code != code:
            return entry, 1000
    best: tuple[str, int] | None = None
    for other_code, other_name in catalogue.normalised_names():
        if other_code == code:
            continue
        # 2 x min length / total length bounds the similarity from above: skip hopeless ones.
        total = len(name) + len(other_name)
        if total == 0 or 2000 * min(len(name), len(other_name)) < at_least * total:
            continue
        score = similarity_permille(name, other_name)
        if score >= at_least and (best is None or score > best[1]):
            best = (other_code, score)
    return None if best is None else (catalogue[best[0]], best[1])


# -- the patient: sex and age ------------------------------------------------------------------


def _patient(run: _Run, invoice: ClaimInvoice, citizen: Citizen, catalogue: Catalogue) -> None:
    sex_done: set[str] = set()
    age_done: set[str] = set()
    for i, line in enumerate(invoice.lines):
        entry = catalogue.get(line.code)
        if entry is None:
            continue
        fields = {"line": i + 1, "code": line.code, "name": line.name}
        if (
            run.on("sex_restricted")
            and entry.sex is not None
            and entry.sex != citizen.sex
            and line.code not in sex_done
        ):
            sex_done.add(line.code)
            run.hit(
                "sex_restricted",
                i,
                None,
                item_sex=entry.sex.value,
                citizen_sex=citizen.sex.value,
                **fields,
            )
        if (
            run.on("age_restricted")
            and (entry.min_age is not None or entry.max_age is not None)
            and line.code not in age_done
        ):
            age = citizen.age_on(line.day)
            if (entry.min_age is not None and age < entry.min_age) or (
                entry.max_age is not None and age >= entry.max_age
            ):
                age_done.add(line.code)
                run.hit("age_restricted", i, None, ages=_ages(entry), age=age, **fields)


def _ages(entry: CatalogueEntry) -> str:
    low = entry.min_age if entry.min_age is not None else 0
    return f"{low}+" if entry.max_age is None else f"{low}-{entry.max_age - 1}"


# -- quantities --------------------------------------------------------------------------------


def _quantities(run: _Run, invoice: ClaimInvoice, catalogue: Catalogue) -> None:
    if not run.on("quantity_over_limit"):
        return
    inpatient = invoice.visit_type is VisitType.INPATIENT
    totals: dict[tuple[str, date | None], int] = defaultdict(int)
    first_line: dict[tuple[str, date | None], int] = {}
    for i, line in enumerate(invoice.lines):
        key = (line.code, line.day if inpatient else None)
        totals[key] += line.quantity_milli
        first_line.setdefault(key, i)
    reported: set[str] = set()
    for (code, day), quantity in totals.items():
        entry = catalogue.get(code)
        if entry is None or code in reported:
            continue
        limit = entry.max_daily_milli if inpatient else entry.max_outpatient_milli
        if limit is None or quantity <= limit:
            continue
        if day is not None:
            period_zh, period_en = f"{day.isoformat()} 当日", f"on {day.isoformat()}"
        else:
            period_zh, period_en = "本张门诊票据", "on this outpatient invoice"
        reported.add(code)
        run.hit(
            "quantity_over_limit",
            first_line[code, day],
            None,
            code=code,
            name=entry.name,
            quantity=_quantity(quantity),
            limit=_quantity(limit),
            period_zh=period_zh,
            period_en=period_en,
        )


# -- history: duplicates, split and overlapping stays ------------------------------------------


def _duplicates(run: _Run, invoice: ClaimInvoice, others: Sequence[ClaimInvoice]) -> None:
    if not run.on("duplicate_charge") or not others:
        return
    same_hospital = run.rule("duplicate_charge").text_param("scope") == "same_hospital"
    billed: dict[tuple[str, date], str] = {}
    for other in others:
        if same_hospital and other.hospital != invoice.hospital:
            continue
        for line in other.lines:
            billed.setdefault((line.code, line.day), other.reference)
    reported: set[tuple[str, date]] = set()
    for i, line in enumerate(invoice.lines):
        key = (line.code, line.day)
        other_reference = billed.get(key)
        if other_reference is not None and key not in reported:
            reported.add(key)
            run.hit(
                "duplicate_charge",
                i,
                other_reference,
                line=i + 1,
                code=line.code,
                name=line.name,
                day=line.day.isoformat(),
                other=other_reference,
            )


def _stays(run: _Run, invoice: ClaimInvoice, others: Sequence[ClaimInvoice]) -> None:
    if invoice.visit_type is not VisitType.INPATIENT:
        return
    admitted, discharged = invoice.admitted_on, invoice.discharged_on
    assert admitted is not None and discharged is not None  # ClaimInvoice enforces it
    rule = run.rule("readmission")
    window = rule.int_param("window_days")
    by_category = rule.text_param("diagnosis_match") == "category"
    mine = _diagnosis_keys(invoice.diagnoses, by_category)
    for other in others:
        if other.visit_type is not VisitType.INPATIENT:
            continue
        o_admitted, o_discharged = other.admitted_on, other.discharged_on
        assert o_admitted is not None and o_discharged is not None
        # Discharge from one and admission to the other on the same day is a transfer, not
        # an overlap.
        overlap = admitted < o_discharged and o_admitted < discharged
        if overlap:
            if run.on("overlapping_stay") and other.hospital != invoice.hospital:
                run.hit(
                    "overlapping_stay",
                    None,
                    other.reference,
                    admitted=admitted.isoformat(),
                    discharged=discharged.isoformat(),
                    other=other.reference,
                    other_hospital=other.hospital,
                    other_admitted=o_admitted.isoformat(),
                    other_discharged=o_discharged.isoformat(),
                )
            continue
        if not run.on("readmission"):
            continue
        earlier, later = (
            (o_discharged, admitted) if o_admitted < admitted else (discharged, o_admitted)
        )
        gap = (later - earlier).days
        shared = sorted(mine & _diagnosis_keys(other.diagnoses, by_category))
        if 0 <= gap <= window and shared:
            run.hit(
                "readmission",
                None,
                other.reference,
                earlier=earlier.isoformat(),
                later=later.isoformat(),
                gap=gap,
                other=other.reference,
                diagnosis=shared[0],
                window=window,
            )


def _diagnosis_keys(diagnoses: Iterable[str], by_category: bool) -> set[str]:
    """ICD-10 codes, or their 3-character categories (J18.0 and J18.9 are both J18)."""
    return {code.strip().upper()[:3] if by_category else code.strip().upper() for code in diagnoses}
