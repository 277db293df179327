"""The invoice model's ranges: every value it accepts is one that every later step handles
(epoch seconds, the canonical form, the QR payload, storage and reading back), and the values
just outside are refused with their field path."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from verifier.canonical import SignedFields, detail_root
from verifier.invoice import (
    BILL_CODE,
    BILL_NUMBER,
    CATALOGUE_CODE,
    CHECK_CODE,
    HOSPITAL_CODE,
    ICD10,
    MAX_CLOCK_SKEW,
    MAX_FEN,
    MAX_QUANTITY_MILLI,
    Invoice,
    InvoiceInvalid,
    invoice_to_json,
    parse_invoice,
)
from verifier.qr import VERSION, QrPayload, decode_payload, encode_payload

ARRIVAL = datetime(2025, 3, 1, 3, 0, tzinfo=UTC)  # 11:00 in China


def invoice_json(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "bill_code": "33082025",
        "bill_number": "0000000001",
        "check_code": "c00001",
        "hospital": "H33080200001",
        "issued_at": "2025-03-01T10:00:00+08:00",
        "visit_type": "outpatient",
        "department": "内科",
        "diagnoses": ["J06.9"],
        "patient_commitment": "0x" + "ab" * 32,
        "total": 3500,
        "insurance_paid": 0,
        "patient_paid": 3500,
        "lines": [
            {
                "code": "XJ01CAA040A001",
                "name": "阿莫西林胶囊",
                "class": "A",
                "unit_price": 1250,
                "quantity_milli": 2000,
                "amount": 2500,
                "department": "内科",
                "time": "2025-03-01T09:30:00+08:00",
            },
            {
                "code": "S001102000010",
                "name": "普通门诊诊查费",
                "class": "A",
                "unit_price": 1000,
                "quantity_milli": 1000,
                "amount": 1000,
                "department": "内科",
                "time": "2025-03-01T09:00:00+08:00",
            },
        ],
    }
    data.update(changes)
    return data


def with_line(**changes: Any) -> dict[str, Any]:
    data = invoice_json()
    data["lines"][0].update(changes)
    return data


def _stored_and_read_back(moment: datetime) -> datetime:
    """What the service stores for a time (epoch seconds and offset minutes) read back."""
    offset = moment.utcoffset()
    assert offset is not None
    zone = timezone(timedelta(minutes=int(offset.total_seconds()) // 60))
    return datetime.fromtimestamp(int(moment.timestamp()), zone)


def assert_every_step_handles(invoice: Invoice) -> None:
    """The invoice round-trips through JSON, its times through storage, and it has a canonical
    form and a QR payload that decodes to the same fields."""
    assert parse_invoice(json.loads(json.dumps(invoice_to_json(invoice)))) == invoice
    for moment in (invoice.issued_at, *(ln.time for ln in invoice.lines)):
        assert _stored_and_read_back(moment) == moment
        assert _stored_and_read_back(moment).utcoffset() == moment.utcoffset()
    fields = SignedFields.of(invoice, detail_root(invoice))
    assert len(fields.record_hash()) == 32
    payload = QrPayload(
        version=VERSION,
        chain_id=5700,
        contract="0x5FbDB2315678afecb367f032d93F642f64180aa3",
        bill_code=invoice.bill_code,
        bill_number=invoice.bill_number,
        check_code=invoice.check_code,
        hospital=invoice.hospital,
        issued_at=int(invoice.issued_at.timestamp()),
        total=invoice.total,
        detail_root=fields.detail_root,
        patient_commitment=invoice.patient_commitment,
        signature=b"\x01" * 65,
    )
    assert decode_payload(encode_payload(payload)) == payload


def problems_of(data: dict[str, Any], received_at: datetime | None = None) -> dict[str, str]:
    with pytest.raises(InvoiceInvalid) as caught:
        parse_invoice(data, received_at)
    found: dict[str, str] = {}
    for p in caught.value.problems:
        found.setdefault(p.path, p.reason)  # the first reason for each field
    return found


def _all_times(value: str) -> dict[str, Any]:
    data = invoice_json(issued_at=value)
    for line in data["lines"]:
        line["time"] = value
    return data


@pytest.mark.parametrize(
    "moment",
    [
        "2000-01-01T00:00:00+00:00",
        "2000-01-01T14:00:00+14:00",
        "2100-12-31T23:59:59+00:00",
        "2100-12-31T09:59:59-14:00",
        "2025-03-01T10:00:00+14:00",
        "2025-03-01T10:00:00-14:00",
        "2025-03-01T10:00:00+05:45",
        "2025-03-01T10:00:00.000+08:00",
    ],
)
def test_times_at_the_edges_are_accepted_and_read_back(moment: str) -> None:
    assert_every_step_handles(parse_invoice(_all_times(moment)))


@pytest.mark.parametrize(
    ("moment", "reason"),
    [
        ("1999-12-31T23:59:59+00:00", "in the years 2000 to 2100"),
        ("2000-01-01T13:59:59+14:00", "in the years 2000 to 2100"),
        ("2101-01-01T00:00:00+00:00", "in the years 2000 to 2100"),
        ("2100-12-31T10:00:00-14:00", "in the years 2000 to 2100"),
        ("1969-12-31T23:59:59+00:00", "in the years 2000 to 2100"),
        ("0001-01-01T00:00:00+14:00", "in the years 2000 to 2100"),
        ("9999-12-31T23:59:59+00:00", "in the years 2000 to 2100"),
        ("2025-03-01T10:00:00+14:01", "offsets are whole minutes within ±14:00"),
        ("2025-03-01T10:00:00-14:01", "offsets are whole minutes within ±14:00"),
        ("9999-12-31T23:59:59-23:59", "offsets are whole minutes within ±14:00"),
        ("2025-03-01T10:00:00+08:00:30", "offsets are whole minutes"),
        ("2025-03-01T10:00:00.000001+08:00", "whole seconds"),
        ("2025-03-01T10:00:00", "must carry a timezone"),
    ],
)
def test_times_outside_are_refused_in_each_field(moment: str, reason: str) -> None:
    problems = problems_of(_all_times(moment))
    assert set(problems) == {"issued_at", "lines[0].time", "lines[1].time"}
    assert all(reason in r for r in problems.values()), problems


def test_times_in_the_future_of_arrival_are_refused_beyond_the_skew() -> None:
    edge = (ARRIVAL + MAX_CLOCK_SKEW).isoformat()
    parse_invoice(_all_times(edge), ARRIVAL)
    parse_invoice(_all_times(edge))  # without an arrival, only the years bound a time
    late = (ARRIVAL + MAX_CLOCK_SKEW + timedelta(seconds=1)).isoformat()
    problems = problems_of(_all_times(late), ARRIVAL)
    assert set(problems) == {"issued_at", "lines[0].time", "lines[1].time"}
    assert all("is in the future" in r for r in problems.values())
    assert (
        "2099"
        in problems_of(invoice_json(issued_at="2099-03-01T10:00:00+08:00"), ARRIVAL)["issued_at"]
    )


@pytest.mark.parametrize(
    ("admitted", "discharged", "field", "reason"),
    [
        ("1999-12-31", "2025-03-01", "admitted_on", "in the years 2000 to 2100"),
        ("1969-12-31", "2025-03-01", "admitted_on", "in the years 2000 to 2100"),
        ("2025-02-25", "2101-01-01", "discharged_on", "in the years 2000 to 2100"),
        ("2025-02-25", "9999-12-31", "discharged_on", "in the years 2000 to 2100"),
        ("2025-02-25", "2025-03-03", "discharged_on", "is in the future"),
        ("2025-02-25", 20250301, "discharged_on", "must be an ISO 8601 date"),
    ],
)
def test_dates_outside_are_refused(admitted: str, discharged: Any, field: str, reason: str) -> None:
    data = invoice_json(visit_type="inpatient", admitted_on=admitted, discharged_on=discharged)
    problems = problems_of(data, ARRIVAL)
    assert reason in problems[field], problems


def test_a_date_of_the_next_day_somewhere_on_earth_is_not_in_the_future() -> None:
    # At 03:00 UTC it is already 17:00 on 1 March at UTC+14 and still 28 February at UTC-12.
    data = invoice_json(
        visit_type="inpatient", admitted_on="2000-01-01", discharged_on="2025-03-01"
    )
    invoice = parse_invoice(data, ARRIVAL)
    assert (invoice.admitted_on, invoice.discharged_on) == (date(2000, 1, 1), date(2025, 3, 1))
    assert_every_step_handles(invoice)


def test_the_largest_amounts_and_quantities_are_accepted_and_handled() -> None:
    price = MAX_FEN // (MAX_QUANTITY_MILLI // 1000)
    data = invoice_json(total=MAX_FEN, insurance_paid=MAX_FEN - 1, patient_paid=1)
    data["lines"] = [
        {**data["lines"][0], "unit_price": price, "quantity_milli": MAX_QUANTITY_MILLI},
    ]
    data["lines"][0]["amount"] = price * (MAX_QUANTITY_MILLI // 1000)
    assert data["lines"][0]["amount"] == MAX_FEN
    assert_every_step_handles(parse_invoice(data))


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        (with_line(quantity_milli=MAX_QUANTITY_MILLI + 1), "lines[0].quantity_milli", "at most"),
        (
            with_line(unit_price=0, quantity_milli=2**63, amount=0),
            "lines[0].quantity_milli",
            "at most",
        ),
        (with_line(unit_price=MAX_FEN + 1), "lines[0].unit_price", "at most"),
        (with_line(amount=2**64), "lines[0].amount", "at most"),
        (invoice_json(total=MAX_FEN + 1), "total", "at most"),
        (invoice_json(insurance_paid=2**63), "insurance_paid", "at most"),
    ],
)
def test_integers_beyond_the_range_are_refused(
    data: dict[str, Any], field: str, reason: str
) -> None:
    assert reason in problems_of(data)[field]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("阿莫西林\ud800", "lone surrogate U+D800"),
        ("\udcff阿莫西林", "lone surrogate U+DCFF"),
        ("阿莫西林\x00", "control character U+0000"),
        ("阿莫\n西林", "control character U+000A"),
        ("阿莫西林\x85", "control character U+0085"),
        ("阿莫\u2028西林", "control character U+2028"),
    ],
)
def test_text_must_be_valid_unicode_without_control_characters(value: str, reason: str) -> None:
    for data, field in (
        (with_line(name=value), "lines[0].name"),
        (with_line(department=value), "lines[0].department"),
        (invoice_json(department=value), "department"),
    ):
        assert reason in problems_of(data)[field]


def test_ordinary_text_is_accepted() -> None:
    names = ["复方α-酮酸片 (0.63 g × 100)", "Ⅱ级护理", "𠀀 rare CJK", "N-乙酰半胱氨酸 — 泡腾片"]
    for name in names:
        assert parse_invoice(with_line(name=name)).lines[0].name == name


@pytest.mark.parametrize(
    ("pattern", "good"),
    [
        (BILL_CODE, "33082025"),
        (BILL_NUMBER, "0001255860"),
        (CHECK_CODE, "c00001"),
        (HOSPITAL_CODE, "H33080200001"),
        (CATALOGUE_CODE, "XJ01CAA040A001"),
        (ICD10, "J06.9"),
    ],
)
def test_code_patterns_match_whole_strings_only(pattern: Any, good: str) -> None:
    assert pattern.fullmatch(good)
    for bad in (good + "\n", "\n" + good, good + " ", good + "-"):
        assert not pattern.fullmatch(bad), bad


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("bill_code", "33082025\n"),
        ("bill_number", "0001255860\n"),
        ("check_code", "c00001\n"),
        ("hospital", "H33080200001\n"),
    ],
)
def test_a_code_with_a_trailing_newline_is_refused(field: str, value: str) -> None:
    assert field in problems_of(invoice_json(**{field: value}))


def test_a_line_code_or_diagnosis_with_a_trailing_newline_is_refused() -> None:
    assert "lines[0].code" in problems_of(with_line(code="XJ01CAA040A001\n"))
    assert (
        "is not an ICD-10 code" in problems_of(invoice_json(diagnoses=["J06.9\n"]))["diagnoses[0]"]
    )
    too_many = problems_of(invoice_json(diagnoses=["J06.9"] * 51))
    assert "at most 50" in too_many["diagnoses"]


def test_a_refused_identity_is_shown_safely() -> None:
    """The reference names the invoice as sent, but escaped when it is not text and cut when
    it is long; reasons quote values briefly."""
    with pytest.raises(InvoiceInvalid) as caught:
        parse_invoice(invoice_json(bill_number="00000\udcff0001"))
    assert caught.value.reference == "33082025-'00000\\udcff0001'"
    caught.value.reference.encode("utf-8")  # no lone surrogate left
    with pytest.raises(InvoiceInvalid) as caught:
        parse_invoice(invoice_json(bill_number="9" * 100_000, issued_at="x" * 100_000))
    assert len(caught.value.reference) < 50
    assert all(len(p.reason) < 200 for p in caught.value.problems)
    malformed = copy.deepcopy(invoice_json(bill_code="3308202"))
    with pytest.raises(InvoiceInvalid) as caught:
        parse_invoice(malformed)
    assert caught.value.reference == "3308202-0000000001"  # as sent, when it is text
