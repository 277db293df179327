"""The HIS export (the e-bill platform interface's issuing request and its answer) read as it
is: mapped onto format 2, every refusal named in the interface's own field names."""

from __future__ import annotations

import base64
import copy
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from verifier.canonical import patient_commitment
from verifier.his import his_path, loads, parse_export
from verifier.invoice import InvoiceInvalid, Scheme

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "his-outpatient.json"
HOSPITAL = "H33080200001"
SALT = bytes(range(16))


def export() -> dict[str, Any]:
    return loads(EXAMPLE.read_text())  # type: ignore[no-any-return]


def refusals(data: Any) -> dict[str, str]:
    with pytest.raises(InvoiceInvalid) as caught:
        parse_export(data, HOSPITAL, SALT)
    return {p.path: p.reason for p in caught.value.problems}


def inpatient() -> dict[str, Any]:
    data = export()
    request = data["request"]
    request.update(
        busType="01",
        hospitalNo="ZY00000042",
        visitNo="ZY00000042-1",
        inHospitalDate="20250220",
        outHospitalDate="20250301",
        leaveCategory="心血管内科",
        checker="复核员乙",
        isArrears="1",
    )
    del request["patientNo"], request["patientCategory"]
    return data


def test_the_documented_export_maps_onto_format_2() -> None:
    invoice, bill = parse_export(export(), HOSPITAL, SALT)
    assert invoice.format == 2 and not bill.inpatient
    assert (invoice.bill_code, invoice.bill_number) == ("33060125", "0000000001")
    assert invoice.check_code == "4ba882"  # the platform's random, case set aside
    # createTime 20250301100000123 in China Standard Time; milliseconds dropped.
    assert invoice.issued_at.isoformat() == "2025-03-01T10:00:00+08:00"
    assert invoice.bill is not None
    assert invoice.bill.business_number == "MZ20250301000001"
    assert invoice.bill.visit_number == "MZ00000001"
    assert invoice.bill.visit_on == date(2025, 3, 1)
    assert invoice.bill.scheme is Scheme.EMPLOYEE
    p = invoice.bill.payment
    assert (p.fund, p.account, p.other, p.cash) == (1800, 1200, 0, 1500)
    assert (p.copay, p.deductible, p.self_pay) == (2700, 0, 0)
    assert invoice.department == "内科" and invoice.diagnoses == ("J06.900",)
    capsule = invoice.lines[1]
    assert capsule.details is not None
    # std 0.4167 x number 24.00: amt 10.0008 is 1000 fen, the unit price kept exactly.
    assert (capsule.details.unit_price_e4, capsule.quantity_milli, capsule.amount) == (
        4167,
        24000,
        1000,
    )
    assert capsule.details.form == "胶囊剂" and capsule.details.specification == "0.25g*24粒"
    blood = invoice.lines[2]
    assert blood.item_class.value == "B"
    assert blood.details is not None
    assert (blood.details.self_amount, blood.details.self_rate_bp) == (250, 1000)
    assert blood.time.isoformat() == "2025-03-01T09:30:00+08:00"  # busDateTime
    assert invoice.patient_commitment == patient_commitment("33080219900101001X", SALT)
    assert bill.patient == {
        "id_number": "33080219900101001X",
        "name": "患者1",
        "salt": SALT.hex(),
        "insurance_number": "330802000000000001",
        "sex": "M",  # 男
        "age": "35岁",
    }


def test_an_inpatient_export_takes_the_stay() -> None:
    invoice, bill = parse_export(inpatient(), HOSPITAL, SALT)
    assert bill.inpatient and invoice.visit_type.value == "inpatient"
    assert (invoice.admitted_on, invoice.discharged_on) == (date(2025, 2, 20), date(2025, 3, 1))
    assert invoice.bill is not None and invoice.bill.visit_number == "ZY00000042"
    assert invoice.department == "心血管内科"


def test_the_platform_envelope_is_read_through_its_data() -> None:
    data = export()
    body = json.dumps(data["request"], ensure_ascii=False).encode()
    data["request"] = {
        "appid": "ZLHIS",
        "data": base64.b64encode(body).decode(),
        "noise": "6c1f3c2e",
        "version": "1.0",
        "sign": "0" * 32,
    }
    invoice, _ = parse_export(data, HOSPITAL, SALT)
    assert invoice.total == 4500
    data["request"]["data"] = "not base64!"
    assert "his.request.data" in refusals(data)


REQUIRED = [
    ("busNo", "his.request.busNo"),
    ("busType", "his.request.busType"),
    ("busDateTime", "his.request.busDateTime"),
    ("totalAmt", "his.request.totalAmt"),
    ("accountPay", "his.request.accountPay"),
    ("fundPay", "his.request.fundPay"),
    ("otherfundPay", "his.request.otherfundPay"),
    ("ownPay", "his.request.ownPay"),
    ("selfConceitedAmt", "his.request.selfConceitedAmt"),
    ("selfPayAmt", "his.request.selfPayAmt"),
    ("selfCashPay", "his.request.selfCashPay"),
    ("patientNo", "his.request.patientNo"),
    ("payer", "his.request.payer"),
    ("chargeDetail", "his.request.chargeDetail"),
    ("listDetail", "his.request.listDetail"),
    ("ICD", "his.request.ICD"),
    ("patientCategory", "his.request.patientCategory"),
]


@pytest.mark.parametrize(("field", "path"), REQUIRED)
def test_each_required_request_field_missing_is_named(field: str, path: str) -> None:
    data = export()
    del data["request"][field]
    assert path in refusals(data)


def test_the_patient_id_number_is_required_from_id_card_or_card_number() -> None:
    data = export()
    del data["request"]["idCardNo"]
    parse_export(data, HOSPITAL, SALT)  # cardType 1101: the card number is the ID number
    data["request"]["cardType"] = "3101"  # a hospital card: no ID number anywhere
    assert "his.request.idCardNo" in refusals(data)


@pytest.mark.parametrize("field", ["billBatchCode", "billNo", "random", "createTime"])
def test_each_response_field_missing_is_named(field: str) -> None:
    data = export()
    del data["response"][field]
    assert f"his.response.{field}" in refusals(data)


@pytest.mark.parametrize(
    ("field", "path"),
    [
        ("code", "his.request.listDetail[1].code"),
        ("name", "his.request.listDetail[1].name"),
        ("std", "his.request.listDetail[1].std"),
        ("number", "his.request.listDetail[1].number"),
        ("amt", "his.request.listDetail[1].amt"),
        ("selfAmt", "his.request.listDetail[1].selfAmt"),
        ("chargeCode", "his.request.listDetail[1].chargeCode"),
    ],
)
def test_each_line_field_missing_is_named(field: str, path: str) -> None:
    data = export()
    del data["request"]["listDetail"][1][field]
    assert path in refusals(data)


def test_a_model_refusal_is_named_in_the_interface_terms() -> None:
    data = export()
    data["request"]["listDetail"][1]["amt"] = "10.0100"  # 0.4167 x 24 is 10.00
    reasons = refusals(data)
    assert reasons["his.request.listDetail[1].amt"].endswith("the line says 1001")
    data = export()
    data["request"]["fundPay"] = "18.01"
    assert "his.request.fundPay+accountPay+otherfundPay+selfCashPay" in refusals(data)
    data = export()
    data["request"]["listDetail"][0]["code"] = "F001102000000100"
    assert "his.request.listDetail[0].code" in refusals(data)
    data = export()
    data["response"]["billBatchCode"] = "33080125"  # category 08: not a medical bill code
    assert "his.response.billBatchCode" in refusals(data)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("0.41675", "more than 4 decimals"),
        ("-1", "must not be negative"),
        ("abc", "must be a number"),
        (True, "must be a number"),
    ],
)
def test_numbers_are_read_exactly_or_refused(value: object, reason: str) -> None:
    data = export()
    data["request"]["listDetail"][1]["std"] = value
    assert reason in refusals(data)["his.request.listDetail[1].std"]


def test_a_json_number_is_read_as_its_decimal_text() -> None:
    data = export()
    data["request"]["totalAmt"] = 45.0  # a float from a lax exporter: 45.0 yuan exactly
    data["request"]["listDetail"][1]["std"] = 0.4167
    invoice, _ = parse_export(data, HOSPITAL, SALT)
    assert invoice.total == 4500
    assert invoice.lines[1].details is not None
    assert invoice.lines[1].details.unit_price_e4 == 4167


def test_scheme_and_business_type_outside_the_medical_bills_are_refused() -> None:
    data = export()
    data["request"]["medicalCareType"] = "商业保险"
    assert "his.request.medicalCareType" in refusals(data)
    for text, scheme in (
        ("城乡居民基本医疗保险", "resident"),
        ("新农合", "resident"),
        ("非医保", "none"),
    ):
        data = export()
        data["request"]["medicalCareType"] = text
        if scheme == "none":  # not settled with insurance: the patient paid it all in cash
            data["request"].update(
                fundPay="0", accountPay="0", selfCashPay="45.00", selfPayAmt="0", ownPay="45.00"
            )
        invoice, _ = parse_export(data, HOSPITAL, SALT)
        assert invoice.bill is not None and invoice.bill.scheme.value == scheme
    data = export()
    data["request"]["busType"] = "05"  # 体检中心: not a bill a payer reimburses
    assert "his.request.busType" in refusals(data)


def test_his_path_maps_model_paths() -> None:
    assert his_path("lines[3].amount") == "his.request.listDetail[3].amt"
    assert his_path("charges[0].amount") == "his.request.chargeDetail[0].amt"
    assert his_path("diagnoses[1]") == "his.request.ICD[1]"
    assert his_path("visit_number", inpatient=True) == "his.request.hospitalNo"
    assert his_path("lines[0].department", inpatient=True) == "his.request.leaveCategory"


def test_the_export_is_not_changed_by_reading_it() -> None:
    data = export()
    before = copy.deepcopy(data)
    parse_export(data, HOSPITAL, SALT)
    assert data == before
