"""The demo data generator: shape of the presets, determinism, validity of every invoice."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import date, timedelta
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.demo.catalogue import CATALOGUE, ITEMS, ItemKind
from api.demo.data import (
    PRESETS,
    QUZHOU_TOTAL_FEN,
    DemoDataset,
    Preset,
    generate,
    id_check_character,
    invoice_json,
    sign_invoices,
    valid_id_number,
)
from chain.model import HospitalLevel
from verifier.canonical import (
    Domain,
    SignedFields,
    patient_commitment,
    recover_signer,
    signing_digest,
)
from verifier.invoice import (
    BILL_CODE,
    BILL_NUMBER,
    CATALOGUE_CODE,
    CHECK_CODE,
    ICD10,
    VisitType,
    parse_invoice,
)

DOMAIN = Domain(5700, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
# All 132 hospitals, a tenth of the invoices, an exact line count: the quzhou code paths, fast.
MINI = Preset("mini", None, 1_560, 133_200, 900)


@pytest.fixture(scope="module")
def small() -> DemoDataset:
    return generate(7, "small")


@pytest.fixture(scope="module")
def quzhou() -> DemoDataset:
    return generate(2025, "quzhou")


# -- resident ID numbers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "id_number",
    [
        "11010519491231002X",  # the example of GB 11643-1999
        "440524188001010014",  # the standard's other example (born 1880)
        "34052419800101001X",
        "110101199003074477",
    ],
)
def test_known_valid_id_numbers(id_number: str) -> None:
    assert valid_id_number(id_number)
    assert id_check_character(id_number[:17]) == id_number[17]


@pytest.mark.parametrize(
    ("id_number", "why"),
    [
        ("110105194912310021", "wrong check character"),
        ("11010519491231002x", "lower-case x"),
        ("110105194902300021", "30 February"),
        ("11010519491231002", "17 characters"),
        ("11010519491231002XX", "19 characters"),
        ("01010519491231002X", "leading zero"),
        ("1101051949123100２X", "full-width digit"),
    ],
)
def test_invalid_id_numbers(id_number: str, why: str) -> None:
    assert not valid_id_number(id_number), why


def test_check_character_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="17 digits"):
        id_check_character("1234")


@given(
    st.sampled_from(["330802", "330803", "330881", "330822", "330824", "330825"]),
    st.dates(date(1920, 1, 1), date(2024, 12, 31)),
    st.integers(1, 999),
)
def test_check_character_detects_any_single_substitution(region: str, born: date, seq: int) -> None:
    first17 = f"{region}{born:%Y%m%d}{seq:03d}"
    good = first17 + id_check_character(first17)
    assert valid_id_number(good)
    for wrong in "0123456789X":
        if wrong != good[17]:
            assert not valid_id_number(first17 + wrong)


# -- the catalogue -------------------------------------------------------------------------------


def test_catalogue_codes_and_entries() -> None:
    assert len(CATALOGUE) == len(ITEMS) >= 300
    kinds = Counter(item.kind for item in ITEMS)
    assert set(kinds) == set(ItemKind)
    for code, item in CATALOGUE.items():
        assert CATALOGUE_CODE.fullmatch(code), code
        assert item.code == code and item.unit_price > 0 and item.unit
        assert 0 < item.usual_daily_milli <= item.max_daily_milli
        assert item.max_outpatient_milli > 0
        assert code[0] == {"western_drug": "X", "patent_medicine": "Z", "herbal": "T",
                           "material": "C"}.get(item.kind.value, "F")  # fmt: skip


def test_catalogue_restrictions_where_natural() -> None:
    by_name = {item.name: item for item in ITEMS}
    assert by_name["子宫下段剖宫产术"].sex == "F"
    assert by_name["前列腺特异性抗原测定"].sex == "M"
    assert by_name["小儿豉翘清热颗粒(2g)"].max_age == 14
    assert by_name["左氧氟沙星片(0.5g)"].min_age == 18
    assert by_name["普通病房床位费(三人间)"].inpatient_only
    assert by_name["普通病房床位费(三人间)"].allows("M", 40)
    assert not by_name["子宫下段剖宫产术"].allows("M", 30)
    assert not by_name["小儿豉翘清热颗粒(2g)"].allows("F", 14)
    assert by_name["小儿豉翘清热颗粒(2g)"].allows("F", 13)


# -- the small preset ----------------------------------------------------------------------------


def test_small_preset_shape(small: DemoDataset) -> None:
    spec = PRESETS["small"]
    assert len(small.hospitals) == 6 and len(small.invoices) == spec.invoices
    assert len(small.citizens) == spec.citizens
    assert {h.code for h in small.hospitals} == {inv.hospital for inv in small.invoices}
    assert small.hospital("H33080200001").name == "衢州市人民医院"
    with pytest.raises(KeyError, match="H00000000000"):
        small.hospital("H00000000000")


def test_deterministic_from_the_seed(small: DemoDataset) -> None:
    assert generate(7, "small") == small
    other = generate(8, "small")
    assert other.invoices != small.invoices
    assert other.citizens != small.citizens
    assert other.hospitals[0].private_key != small.hospitals[0].private_key


def test_mid_size_preset_is_deterministic_and_exact() -> None:
    first = generate(3, MINI)
    assert first.line_count == MINI.lines
    assert len({inv.hospital for inv in first.invoices}) == 132
    assert generate(3, MINI) == first


def test_unknown_preset() -> None:
    with pytest.raises(KeyError, match="huge"):
        generate(1, "huge")


def test_small_invoices_round_trip_and_commit_to_their_patient(small: DemoDataset) -> None:
    for index, invoice in enumerate(small.invoices):
        assert parse_invoice(invoice_json(invoice)) == invoice
        patient = small.patients[index]
        citizen = small.citizen_of(index)
        assert len(patient.salt) == 16
        assert invoice.patient_commitment == patient_commitment(citizen.id_number, patient.salt)
    assert len({p.salt for p in small.patients}) == len(small.patients)


def test_citizens_are_well_formed(small: DemoDataset, quzhou: DemoDataset) -> None:
    for dataset in (small, quzhou):
        ids = [c.id_number for c in dataset.citizens]
        assert len(set(ids)) == len(ids)
        for citizen in dataset.citizens:
            assert valid_id_number(citizen.id_number)
            assert citizen.id_number.startswith("3308")
            assert citizen.id_number[6:14] == f"{citizen.birth_date:%Y%m%d}"
            assert int(citizen.id_number[16]) % 2 == (1 if citizen.sex == "M" else 0)
            assert 2 <= len(citizen.name) <= 3
            assert citizen.birth_date <= date(2024, 12, 31)


def test_signatures_recover_to_the_hospital_key(small: DemoDataset) -> None:
    signatures = sign_invoices(small, DOMAIN)
    assert len(signatures) == len(small.invoices)
    for invoice, signature in zip(small.invoices, signatures, strict=True):
        digest = signing_digest(DOMAIN, SignedFields.of(invoice).record_hash())
        assert recover_signer(digest, signature) == small.hospital(invoice.hospital).address
    # The forked workers sign exactly as the serial path does (signatures are deterministic).
    assert sign_invoices(small, DOMAIN, processes=2) == signatures


# -- the quzhou preset ---------------------------------------------------------------------------


def test_quzhou_counts(quzhou: DemoDataset) -> None:
    assert len(quzhou.hospitals) == 132
    levels = Counter(h.level for h in quzhou.hospitals)
    assert levels == {
        HospitalLevel.TERTIARY: 5,
        HospitalLevel.SECONDARY: 20,
        HospitalLevel.PRIMARY: 40,
        HospitalLevel.TOWNSHIP: 67,
    }
    assert len({h.code for h in quzhou.hospitals}) == 132
    assert len({h.name for h in quzhou.hospitals}) == 132
    assert len(quzhou.invoices) == 15_605
    assert quzhou.line_count == 1_332_000
    assert abs(quzhou.total_fen - QUZHOU_TOTAL_FEN) <= QUZHOU_TOTAL_FEN // 100
    assert len(quzhou.citizens) == 9_000
    assert {inv.hospital for inv in quzhou.invoices} == {h.code for h in quzhou.hospitals}


def test_quzhou_mix(quzhou: DemoDataset) -> None:
    sizes = Counter(inv.visit_type for inv in quzhou.invoices)
    assert 0.15 < sizes[VisitType.INPATIENT] / len(quzhou.invoices) < 0.4
    outpatient = [len(i.lines) for i in quzhou.invoices if i.visit_type is VisitType.OUTPATIENT]
    inpatient = [len(i.lines) for i in quzhou.invoices if i.visit_type is VisitType.INPATIENT]
    assert min(outpatient) >= 5 and max(outpatient) <= 40
    assert sorted(inpatient)[len(inpatient) // 2] >= 100  # stays run to hundreds of lines
    self_pay = sum(1 for inv in quzhou.invoices if inv.insurance_paid == 0)
    assert self_pay / len(quzhou.invoices) > 0.8
    per_citizen = Counter(p.citizen for p in quzhou.patients)
    assert max(per_citizen.values()) >= 5 and Counter(per_citizen.values())[1] > 1000
    assert len(Counter(inv.department for inv in quzhou.invoices)) >= 12


def test_quzhou_invoices_are_well_formed(quzhou: DemoDataset) -> None:
    identities = {(inv.bill_code, inv.bill_number) for inv in quzhou.invoices}
    assert len(identities) == len(quzhou.invoices)
    issued = [inv.issued_at for inv in quzhou.invoices]
    assert issued == sorted(issued)
    for invoice in quzhou.invoices:
        assert BILL_CODE.fullmatch(invoice.bill_code) and BILL_NUMBER.fullmatch(invoice.bill_number)
        assert CHECK_CODE.fullmatch(invoice.check_code)
        assert all(ICD10.fullmatch(code) for code in invoice.diagnoses)
        assert invoice.issued_at.year == 2025
        assert invoice.issued_at.utcoffset() == timedelta(hours=8)
        assert invoice.total == sum(line.amount for line in invoice.lines)
        assert invoice.insurance_paid + invoice.patient_paid == invoice.total
        if invoice.visit_type is VisitType.INPATIENT:
            assert invoice.admitted_on is not None and invoice.discharged_on is not None
            assert 2 <= (invoice.discharged_on - invoice.admitted_on).days <= 20
            assert invoice.issued_at.date() == invoice.discharged_on


def test_quzhou_sample_round_trips(quzhou: DemoDataset) -> None:
    for index in random.Random(1).sample(range(len(quzhou.invoices)), 400):
        invoice = quzhou.invoices[index]
        assert parse_invoice(invoice_json(invoice)) == invoice
        patient = quzhou.patients[index]
        citizen = quzhou.citizens[patient.citizen]
        assert invoice.patient_commitment == patient_commitment(citizen.id_number, patient.salt)


def test_quzhou_lines_keep_the_catalogue_rules(quzhou: DemoDataset) -> None:
    """Clean demo data: every line is the catalogue's item at its price, within its quantity
    limits, for a patient of the right sex and age and a department that may bill it."""
    sample = random.Random(2).sample(range(len(quzhou.invoices)), 3_000)
    for index in sample:
        invoice = quzhou.invoices[index]
        citizen = quzhou.citizen_of(index)
        inpatient = invoice.visit_type is VisitType.INPATIENT
        used: Counter[tuple[date | None, str]] = Counter()
        for line in invoice.lines:
            item = CATALOGUE[line.code]
            assert (line.name, line.item_class, line.unit_price) == (
                item.name,
                item.item_class,
                item.unit_price,
            )
            assert line.department == invoice.department
            assert line.time <= invoice.issued_at
            assert item.allows(citizen.sex, citizen.age_on(line.time.date())), item.name
            assert item.departments is None or invoice.department in item.departments
            if inpatient:
                assert invoice.admitted_on is not None and invoice.discharged_on is not None
                assert invoice.admitted_on <= line.time.date() < invoice.discharged_on
                assert not item.outpatient_only
            else:
                assert not item.inpatient_only
            used[(line.time.date() if inpatient else None, line.code)] += line.quantity_milli
        for (_, code), quantity in used.items():
            item = CATALOGUE[code]
            assert quantity <= (item.max_daily_milli if inpatient else item.max_outpatient_milli)
        if invoice.department == "儿科":
            assert citizen.age_on(invoice.issued_at.date()) < 14
        if invoice.department == "妇产科":
            assert citizen.sex == "F"


def test_quzhou_patients_are_never_in_two_places(quzhou: DemoDataset) -> None:
    stays = defaultdict(list)
    visits = defaultdict(list)
    for index, invoice in enumerate(quzhou.invoices):
        citizen = quzhou.patients[index].citizen
        if invoice.admitted_on is not None and invoice.discharged_on is not None:
            stays[citizen].append((invoice.admitted_on, invoice.discharged_on))
        else:
            visits[citizen].append(invoice.issued_at.date())
    for citizen, spans in stays.items():
        spans.sort()
        for (_, end), (start, _) in pairwise(spans):
            assert start > end + timedelta(days=15)
        for day in visits[citizen]:
            assert not any(a <= day <= b for a, b in spans)
