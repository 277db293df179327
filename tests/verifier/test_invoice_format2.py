"""Format 2 of the invoice model: the national medical e-bill's fields, every printed sum
checked, exact sub-fen unit prices, and a detail tree that names every field it signs."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import cbor2
import pytest

from tests.format2 import bill
from verifier.canonical import SignedFields, detail_entries, detail_root
from verifier.invoice import (
    InvoiceInvalid,
    Scheme,
    fen_of_e4,
    invoice_to_json,
    line_amount_e4,
    parse_invoice,
)


def problems(data: dict[str, Any]) -> dict[str, str]:
    """The refusal's reasons by field path (several for one path joined by " | ")."""
    with pytest.raises(InvoiceInvalid) as caught:
        parse_invoice(data)
    found: dict[str, str] = {}
    for p in caught.value.problems:
        found[p.path] = f"{found[p.path]} | {p.reason}" if p.path in found else p.reason
    return found


def test_the_example_bill_parses_and_reads_back_as_it_was_written() -> None:
    data = bill(7)
    invoice = parse_invoice(data)
    assert invoice.format == 2
    assert invoice_to_json(invoice) == data
    assert invoice.bill is not None
    assert invoice.bill.scheme is Scheme.EMPLOYEE
    assert invoice.bill.visit_on == date(2025, 3, 1)
    assert invoice.bill.business_number == "MZ20250301000007"
    # What the funds and the account paid is the insurance's part, cash the patient's.
    assert (invoice.insurance_paid, invoice.patient_paid) == (1800 + 1200, 1500)
    assert [c.amount for c in invoice.bill.charges] == [1000, 2500, 1000]


def test_a_sub_fen_unit_price_is_kept_exactly_and_rounded_once() -> None:
    invoice = parse_invoice(bill())
    capsule = invoice.lines[1]
    assert capsule.details is not None
    # 0.4167 yuan x 24 = 10.0008 yuan: 1000 fen, the unit price kept to the ten-thousandth.
    assert capsule.details.unit_price_e4 == 4167
    assert capsule.amount == line_amount_e4(4167, 24000) == 1000
    assert capsule.unit_price == fen_of_e4(4167) == 42  # shown to the fen
    # Half up: 0.0125 yuan x 1 is 1.25 fen -> 1 fen; 0.0150 yuan is 1.5 fen -> 2 fen.
    assert line_amount_e4(125, 1000) == 1
    assert line_amount_e4(150, 1000) == 2
    data = bill()
    data["lines"][1]["amount"] = 1001
    assert problems(data) == {
        "lines[1].amount": "0.4167 yuan x 24 = 1000 fen (rounded half up), the line says 1001"
    }


def test_a_split_that_does_not_add_up_is_refused() -> None:
    data = bill()
    data["payment"]["cash"] = 1501
    reasons = problems(data)
    assert reasons["payment"].startswith("fund + account + other + cash = 4501 fen")
    data = bill()
    data["payment"]["copay"] = 2600  # the shares no longer add up to account + cash
    assert problems(data) == {
        "payment": "copay + deductible + self_pay = 2600 fen, but the patient paid account"
        " + cash = 2700"
    }


def test_categories_must_add_up_to_the_total_and_lines_to_their_category() -> None:
    data = bill()
    data["charges"][0]["amount"] = 1100
    reasons = problems(data)
    assert reasons["charges"] == "the categories add up to 4600 fen, the total says 4500"
    assert reasons["charges[0].amount"] == (
        "the lines of '01' add up to 1000 fen, the category says 1100"
    )
    data = bill()
    data["lines"][1]["charge"] = "99"
    assert problems(data)["lines[1].charge"] == "'99' is none of the bill's charge categories"
    data = bill()
    data["charges"][1]["code"] = "01"
    assert "appears twice" in problems(data)["charges[1].code"]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("lines[0].code", "001102000000100"),  # a medical service: 15 digits, no letter
        ("lines[1].code", "XR05CBA198A001010100863"),  # Western medicine: X + 22
        ("lines[1].code", "ZA01AAA0001010100001"),  # Chinese patent medicine: Z + 19
        ("lines[1].code", "C0101010010000100001"),  # consumable: C + 19 digits
        ("diagnoses[0]", "I10.x00"),
        ("diagnoses[0]", "I10.x00x002"),
        ("diagnoses[0]", "N05.900x003"),
    ],
)
def test_codes_as_the_national_catalogues_write_them_are_accepted(path: str, value: str) -> None:
    data = bill()
    field, _, rest = path.partition("[")
    index = int(rest.split("]")[0])
    if field == "lines":
        data["lines"][index]["code"] = value
    else:
        data["diagnoses"][index] = value
    parse_invoice(data)


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"bill_code": "33082501"}, "bill_code"),  # positions 3-4 are 08, not 06
        ({"hospital": "33080200001"}, "hospital"),  # no H
        ({"check_code": "4ba88z"}, "check_code"),  # not hex
    ],
)
def test_a_wrong_code_is_refused_with_what_it_should_look_like(
    change: dict[str, str], path: str
) -> None:
    data = bill()
    data.update(change)
    reason = problems(data)[path]
    assert ";" in reason or "；" in reason, reason  # said in Chinese and in English
    assert any("\u4e00" <= ch <= "\u9fff" for ch in reason), reason


def test_a_wrong_line_code_names_its_line() -> None:
    data = bill()
    data["lines"][0]["code"] = "F001102000000100"
    reason = problems(data)["lines[0].code"]
    assert "'F001102000000100'" in reason


def test_the_check_code_is_read_without_regard_to_case() -> None:
    data = bill()
    data["check_code"] = "4BA882"
    assert parse_invoice(data).check_code == "4ba882"


def test_outpatient_needs_the_visit_date_and_inpatient_its_stay() -> None:
    data = bill()
    del data["visit_on"]
    assert "visit_on" in problems(data)
    data = bill()
    data.update(visit_type="inpatient")
    reasons = problems(data)
    assert {"admitted_on", "discharged_on"} <= reasons.keys()
    data.update(admitted_on="2025-02-20", discharged_on="2025-03-01")
    invoice = parse_invoice(data)
    assert invoice.admitted_on == date(2025, 2, 20)


@pytest.mark.parametrize("version", [3, "2", True, 0])
def test_an_unknown_format_is_refused(version: object) -> None:
    data = bill()
    data["format"] = version
    assert "must be 1 or 2" in problems(data)["format"]


def test_every_field_missing_is_named() -> None:
    for key in (
        "business_number",
        "visit_number",
        "scheme",
        "payment",
        "charges",
        "total",
        "hospital",
    ):
        data = bill()
        del data[key]
        assert key in problems(data), key
    for key in ("unit_price_e4", "quantity_milli", "self_amount", "self_rate_bp", "charge"):
        data = bill()
        del data["lines"][2][key]
        assert f"lines[2].{key}" in problems(data), key


def test_self_pay_amount_and_share_are_bounded() -> None:
    data = bill()
    data["lines"][2]["self_amount"] = 2501
    assert "more than the line's 2500" in problems(data)["lines[2].self_amount"]
    data = bill()
    data["lines"][2]["self_rate_bp"] = 10_001
    assert "from 0 to 10000" in problems(data)["lines[2].self_rate_bp"]


def test_the_detail_tree_names_every_field_and_any_change_changes_the_root() -> None:
    invoice = parse_invoice(bill())
    entries = detail_entries(invoice)
    head = cbor2.loads(entries[0])
    assert head[0] == "bill/2"
    assert head[1]["payment"] == [1800, 1200, 0, 1500, 2700, 0, 0]
    assert head[1]["scheme"] == "employee"
    line = cbor2.loads(entries[2])
    assert line[0] == "line/2" and line[1]["unit_price_e4"] == 4167
    assert line[1]["form"] == "胶囊剂"
    root = detail_root(invoice)
    for change in (
        lambda d: d["payment"].update(account=1100, cash=1600),
        lambda d: d.update(business_number="MZ2"),
        lambda d: d["lines"][1].update(specification="0.5g*12粒"),
        lambda d: d["charges"][2].update(name="诊查费"),
    ):
        data = bill()
        change(data)
        assert detail_root(parse_invoice(data)) != root
    # The signed record (the QR's fields) is the same shape as format 1's.
    fields = SignedFields.of(invoice)
    assert fields.total == 4500 and fields.detail_root == root


def test_times_in_the_future_of_arrival_are_refused() -> None:
    data = bill()
    arrived = datetime(2025, 3, 1, 1, 0, tzinfo=UTC)  # 09:00 in China, before the issue time
    reasons = problems_at(data, arrived)
    assert "is in the future" in reasons["issued_at"]


def problems_at(data: dict[str, Any], received_at: datetime) -> dict[str, str]:
    with pytest.raises(InvoiceInvalid) as caught:
        parse_invoice(data, received_at)
    return {p.path: p.reason for p in caught.value.problems}


def test_a_bill_not_settled_with_insurance_has_no_fund_or_account_payment() -> None:
    data = bill()
    data["scheme"] = "none"
    assert problems(data)["payment"] == (
        "a bill not settled with insurance (scheme none) has no fund or account payment,"
        " got fund 1800 and account 1200 fen"
    )
    data["payment"].update(fund=0, account=0, cash=4500, copay=4500)
    parse_invoice(data)
