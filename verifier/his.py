"""A hospital's HIS export, taken as it is: the issuing request of the medical e-bill platform
interface (博思 医疗电子票据管理平台 接口规范 v3.x) mapped onto the invoice model, format 2.

Most hospitals' HIS already speak this interface: to issue a medical e-bill the HIS sends the
platform a business JSON (``invoiceEBillOutpatient`` for an outpatient visit,
``invEBillHospitalized`` for a stay) and the platform answers with the bill's identity. A HIS
export is the pair, as the HIS has it::

    {"request": {"busNo": ..., "payer": ..., "totalAmt": "45.00", "fundPay": ..., ...,
                 "chargeDetail": [...], "listDetail": [...]},
     "response": {"billBatchCode": "33060125", "billNo": "0000000001", "random": "4ba882",
                  "createTime": "20250301100000000", ...}}

The request may also be the platform's envelope ``{"appid", "data": base64(JSON), "noise",
"version", "sign"}``: its ``data`` is decoded (its MD5 ``sign`` needs the platform's private
key, so it is not checked; the hospital's own signature is what zeroclaim checks).

:func:`read_export` gives the format-2 invoice JSON (``verifier.invoice.parse_invoice`` then
checks every field and sum) and the patient block; :func:`his_path` turns a field path of the
model back into the interface's own names, so that a refusal names ``listDetail[3].amt``, not
``lines[3].amount``. The field mapping is written out in docs/his-export.md.

Numbers are read exactly, as the interface sends them (strings, or JSON numbers read as their
shortest decimal text): yuan with up to 2 decimals for the bill's amounts (totalAmt, the
payment fields, chargeDetail.amt), unit prices (listDetail.std) with up to 4 decimals and
quantities (number) with up to 3, kept exactly. A line's amt and selfAmt (Number(14,4): the
exact std x number, 0.4167 x 24 = 10.0008) are rounded half up to the fen, as the bill prints
them; the model then checks that amount against std x number by the same rule. Any other value
the model cannot hold exactly is refused, never rounded.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from verifier.canonical import patient_commitment
from verifier.invoice import Invoice, InvoiceInvalid, Problem, parse_invoice

CHINA_TIME: Final = timezone(timedelta(hours=8), "Asia/Shanghai")

#: busType (业务标识, App. 5 of the interface) of the bills taken: 01 住院 is a stay, 02 门诊,
#: 03 急诊 and 04 门特 are outpatient visits. Others (体检, 预交金, 往来, 捐赠, 非税) are not
#: medical e-bills a payer reimburses.
INPATIENT_BUSINESS: Final = frozenset({"01"})
OUTPATIENT_BUSINESS: Final = frozenset({"02", "03", "04"})
#: listDetail.medicalCareType (医保药品分类): 1 无自负 甲, 2 有自负 乙, 3 全自负 丙.
LINE_CLASS: Final = {"1": "A", "2": "B", "3": "C"}

_DATE: Final = re.compile(r"([0-9]{4})-?([0-9]{2})-?([0-9]{2})")
_MOMENT: Final = re.compile(
    r"([0-9]{4})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{3})?"
)

# The model's field paths and the interface's names, both ways (his_path).
_HEADER_PATHS: Final = {
    "bill_code": "response.billBatchCode",
    "bill_number": "response.billNo",
    "check_code": "response.random",
    "issued_at": "response.createTime",
    "hospital": "hospital",
    "business_number": "request.busNo",
    "visit_type": "request.busType",
    "department": "request.patientCategory",
    "scheme": "request.medicalCareType",
    "diagnoses": "request.ICD",
    "total": "request.totalAmt",
    "payment.fund": "request.fundPay",
    "payment.account": "request.accountPay",
    "payment.other": "request.otherfundPay",
    "payment.cash": "request.selfCashPay",
    "payment.copay": "request.selfPayAmt",
    "payment.deductible": "request.selfConceitedAmt",
    "payment.self_pay": "request.ownPay",
    "payment": "request.fundPay+accountPay+otherfundPay+selfCashPay",
    "charges": "request.chargeDetail",
    "lines": "request.listDetail",
    "admitted_on": "request.inHospitalDate",
    "discharged_on": "request.outHospitalDate",
    "patient_commitment": "request.idCardNo",
}
_OUTPATIENT_PATHS: Final = {
    "visit_number": "request.patientNo",
    "visit_on": "request.consultationDate",
}
_INPATIENT_PATHS: Final = {
    "visit_number": "request.hospitalNo",
    "visit_on": "request.consultationDate",
    "department": "request.leaveCategory",
}
_CHARGE_PATHS: Final = {"code": "chargeCode", "name": "chargeName", "amount": "amt"}
_LINE_PATHS: Final = {
    "code": "code",
    "name": "name",
    "form": "form",
    "specification": "specification",
    "unit": "unit",
    "class": "medicalCareType",
    "unit_price_e4": "std",
    "quantity_milli": "number",
    "amount": "amt",
    "self_amount": "selfAmt",
    "self_rate_bp": "medReimburseRate",
    "charge": "chargeCode",
}
_PATH: Final = re.compile(r"(lines|charges)\[([0-9]+)\](?:\.(.*))?")


@dataclass(frozen=True)
class HisBill:
    """A HIS export read into the model's terms: the format-2 invoice JSON and its patient."""

    invoice: dict[str, Any]
    patient: dict[str, str]
    inpatient: bool

    def path(self, model_path: str) -> str:
        """The interface's name of a field path of the model (:func:`his_path`)."""
        return his_path(model_path, self.inpatient)


def his_path(model_path: str, inpatient: bool = False) -> str:
    """The HIS export's own name for a field of the model: ``lines[3].amount`` is
    ``his.request.listDetail[3].amt``, ``payment.fund`` is ``his.request.fundPay``."""
    own = _INPATIENT_PATHS if inpatient else _OUTPATIENT_PATHS
    found = _PATH.fullmatch(model_path)
    if found is not None:
        kind, index, field = found.groups()
        if kind == "lines" and field == "department":  # a line is billed in the bill's
            return "his." + (own.get("department") or _HEADER_PATHS["department"])
        if kind == "lines" and field == "time":
            return "his.request.busDateTime"
        names = _LINE_PATHS if kind == "lines" else _CHARGE_PATHS
        base = f"his.request.{'listDetail' if kind == 'lines' else 'chargeDetail'}[{index}]"
        return f"{base}.{names.get(field, field)}" if field else base
    head, _, rest = model_path.partition("[")
    name = own.get(head) or _HEADER_PATHS.get(head)
    if name is None:
        return f"his.{model_path}"
    return f"his.{name}" + (f"[{rest}" if rest else "")


def looks_like_export(item: Mapping[str, Any]) -> bool:
    """Whether a batch item holds a HIS export (``his``) rather than a model invoice."""
    return isinstance(item, Mapping) and "his" in item


def read_export(export: Any, hospital: str, salt: bytes) -> HisBill:
    """Maps a HIS export (see the module docstring) onto the model, format 2.

    ``hospital`` is the issuing hospital's registered code (the interface has no field for
    it) and ``salt`` the 16 random bytes of the patient commitment that the hospital keeps with
    the bill. Raises ``InvoiceInvalid`` whose problems are named in the interface's terms;
    the returned invoice JSON is still to be checked by ``parse_invoice`` (translate its
    problems with :meth:`HisBill.path`).
    """
    problems: list[Problem] = []
    if not isinstance(export, Mapping):
        raise InvoiceInvalid("?", [Problem("his", "must be an object with request and response")])
    request = _request(export.get("request"), problems)
    response = export.get("response")
    if not isinstance(response, Mapping):
        problems.append(
            Problem(
                "his.response",
                "must be the platform's answer to the issuing request (billBatchCode, billNo,"
                " random, createTime): the bill's identity comes from it",
            )
        )
        response = {}
    reference = f"{response.get('billBatchCode') or '?'}-{response.get('billNo') or '?'}"
    if request is None:
        raise InvoiceInvalid(str(reference), problems)
    r = _Reader(problems)
    business = r.text(request, "busType", "request.")
    inpatient = business in INPATIENT_BUSINESS
    if business and not inpatient and business not in OUTPATIENT_BUSINESS:
        r.bad(
            "request.busType",
            f"{business!r} is not a medical bill a payer reimburses: 01 住院 inpatient, 02 门诊,"
            " 03 急诊 or 04 门特 outpatient",
        )
    busy = r.moment(request, "busDateTime", "request.")
    issued = r.moment(response, "createTime", "response.")
    invoice: dict[str, Any] = {
        "format": 2,
        "bill_code": r.text(response, "billBatchCode", "response."),
        "bill_number": r.text(response, "billNo", "response."),
        "check_code": r.text(response, "random", "response."),
        "hospital": hospital,
        "issued_at": issued.isoformat() if issued else "",
        "business_number": r.text(request, "busNo", "request."),
        "visit_type": "inpatient" if inpatient else "outpatient",
        "scheme": _scheme(r, request.get("medicalCareType")),
        "diagnoses": _diagnoses(request.get("ICD")),
        "total": r.fen(request, "totalAmt", "request."),
        "payment": {
            key: r.fen(request, name, "request.")
            for key, name in (
                ("fund", "fundPay"),
                ("account", "accountPay"),
                ("other", "otherfundPay"),
                ("cash", "selfCashPay"),
                ("copay", "selfPayAmt"),
                ("deductible", "selfConceitedAmt"),
                ("self_pay", "ownPay"),
            )
        },
    }
    if inpatient:
        invoice["visit_number"] = r.text(request, "hospitalNo", "request.")
        invoice["department"] = request.get("leaveCategory") or request.get("category") or ""
        for key, name in (("admitted_on", "inHospitalDate"), ("discharged_on", "outHospitalDate")):
            if (day := r.day(request, name, "request.")) is not None:
                invoice[key] = day.isoformat()
    else:
        invoice["visit_number"] = r.text(request, "patientNo", "request.")
        # ≤ v3.1.0 named the department field ``category``.
        invoice["department"] = request.get("patientCategory") or request.get("category") or ""
        visit_on = r.day(request, "consultationDate", "request.")
        if visit_on is None and busy is not None:
            visit_on = busy.date()  # the visit is the business the bill is for
        if visit_on is not None:
            invoice["visit_on"] = visit_on.isoformat()
    charges = _charges(r, request.get("chargeDetail"))
    invoice["charges"] = charges
    only = charges[0]["code"] if len(charges) == 1 else None
    invoice["lines"] = _lines(r, request.get("listDetail"), invoice["department"], busy, only)
    patient = _patient(r, request, salt)
    if patient is not None:
        invoice["patient_commitment"] = "0x" + patient_commitment(patient["id_number"], salt).hex()
    if problems:
        raise InvoiceInvalid(str(reference), problems)
    assert patient is not None
    return HisBill(invoice, patient, inpatient)


def translate(error: InvoiceInvalid, bill: HisBill) -> InvoiceInvalid:
    """``parse_invoice``'s refusal of a mapped export, with the interface's field names."""
    return InvoiceInvalid(
        error.reference, [Problem(bill.path(p.path), p.reason) for p in error.problems]
    )


def loads(text: str) -> Any:
    """JSON as the interface sends it, numbers kept exact (never through a float)."""
    return json.loads(text, parse_float=Decimal)


# -- reading the request -----------------------------------------------------------------------


def _request(value: Any, problems: list[Problem]) -> Mapping[str, Any] | None:
    if isinstance(value, Mapping) and "data" in value and "busNo" not in value:
        try:
            value = loads(base64.b64decode(str(value["data"]), validate=True).decode("utf-8"))
        except (binascii.Error, UnicodeDecodeError, ValueError):
            problems.append(
                Problem("his.request.data", "is not the base64 of a UTF-8 JSON business request")
            )
            return None
    if not isinstance(value, Mapping):
        problems.append(
            Problem(
                "his.request",
                "must be the issuing request (invoiceEBillOutpatient or invEBillHospitalized)",
            )
        )
        return None
    return value


class _Reader:
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems

    def bad(self, path: str, reason: str) -> None:
        self.problems.append(Problem(f"his.{path}", reason))

    def text(self, obj: Mapping[str, Any], key: str, path: str) -> str:
        value = obj.get(key)
        if value is None or value == "":
            self.bad(f"{path}{key}", "is required")
            return ""
        if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            self.bad(f"{path}{key}", f"must be a string, got {_shown(value)}")
            return ""
        return value.strip()

    def scaled(self, obj: Mapping[str, Any], key: str, path: str, places: int) -> int | None:
        """A decimal number as an integer of 10^-places units, exactly."""
        value = obj.get(key)
        where = f"{path}{key}"
        if value is None or value == "":
            self.bad(where, "is required")
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
            self.bad(where, f"must be a number, got {_shown(value)}")
            return None
        try:
            number = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
        except InvalidOperation:
            number = Decimal("NaN")
        if not number.is_finite():
            self.bad(where, f"must be a number, got {_shown(value)}")
            return None
        if number < 0:
            self.bad(where, f"must not be negative, got {value}")
            return None
        units = number.scaleb(places)
        if units != units.to_integral_value():
            self.bad(where, f"{value} has more than {places} decimals")
            return None
        return int(units)

    def fen(self, obj: Mapping[str, Any], key: str, path: str, places: int = 2) -> int:
        """Yuan to fen. With ``places=4`` (listDetail.amt and selfAmt, Number(14,4): the
        exact std x number) the value is rounded half up to the fen, the bill's precision."""
        value = self.scaled(obj, key, path, places)
        if value is None:
            return -1  # refused above; the invoice is not built
        if places == 2:
            return value
        unit: int = 10 ** (places - 2)
        return (value + unit // 2) // unit

    def day(self, obj: Mapping[str, Any], key: str, path: str) -> date | None:
        value = obj.get(key)
        if value is None or value == "":
            return None
        found = _DATE.fullmatch(str(value).strip())
        try:
            if found is None:
                raise ValueError
            return date(int(found[1]), int(found[2]), int(found[3]))
        except ValueError:
            self.bad(
                f"{path}{key}", f"must be a date yyyyMMdd (or yyyy-MM-dd), got {_shown(value)}"
            )
            return None

    def moment(self, obj: Mapping[str, Any], key: str, path: str) -> datetime | None:
        """yyyyMMddHHmmssSSS in China Standard Time; the milliseconds are dropped (the signed
        form counts whole seconds)."""
        value = obj.get(key)
        found = _MOMENT.fullmatch(str(value).strip()) if isinstance(value, str) else None
        try:
            if found is None:
                raise ValueError
            y, mo, d, h, mi, s = (int(found[i]) for i in range(1, 7))
            return datetime(y, mo, d, h, mi, s, tzinfo=CHINA_TIME)
        except ValueError:
            self.bad(
                f"{path}{key}",
                "is required"
                if value is None
                else f"must be yyyyMMddHHmmssSSS (China Standard Time), got {_shown(value)}",
            )
            return None


def _scheme(r: _Reader, value: Any) -> str:
    """medicalCareType (医保类型名称) is free text in the interface: 职工基本医疗保险,
    城乡居民基本医疗保险 (城镇居民, 新农合), 非医保..."""
    text = value.strip() if isinstance(value, str) else ""
    if not text or any(word in text for word in ("非医保", "自费", "无")):
        return "none"
    if "职工" in text:
        return "employee"
    if any(word in text for word in ("居民", "新农合", "农村合作")):
        return "resident"
    r.bad(
        "request.medicalCareType",
        f"{_shown(value)} names no scheme zeroclaim knows: 职工基本医疗保险 (employees),"
        " 城乡居民基本医疗保险 / 城镇居民 / 新农合 (residents) or 非医保 (none)",
    )
    return "none"


def _diagnoses(value: Any) -> list[Any]:
    """ICD (疾病编码) holds one code, or several separated by , ; or |."""
    if not isinstance(value, str):
        return [] if value is None else [value]
    return [code.strip() for code in re.split(r"[,;|，；]", value) if code.strip()]


def _charges(r: _Reader, value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        r.bad("request.chargeDetail", "must be a non-empty list of charge categories (收费项目)")
        return []
    out = []
    for i, raw in enumerate(value):
        path = f"request.chargeDetail[{i}]."
        if not isinstance(raw, Mapping):
            r.bad(f"request.chargeDetail[{i}]", "must be an object")
            continue
        out.append(
            {
                "code": r.text(raw, "chargeCode", path),
                "name": r.text(raw, "chargeName", path),
                "amount": r.fen(raw, "amt", path),
            }
        )
    return out


def _lines(
    r: _Reader,
    value: Any,
    department: str,
    busy: datetime | None,
    only_charge: str | None,
) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        r.bad("request.listDetail", "must be a non-empty list of itemised lines (清单项目)")
        return []
    when = busy.isoformat() if busy else ""
    out = []
    for i, raw in enumerate(value):
        path = f"request.listDetail[{i}]."
        if not isinstance(raw, Mapping):
            r.bad(f"request.listDetail[{i}]", "must be an object")
            continue
        price = r.scaled(raw, "std", path, 4)
        quantity = r.scaled(raw, "number", path, 3)
        amount = r.fen(raw, "amt", path, places=4)
        self_amount = r.fen(raw, "selfAmt", path, places=4)
        kind = raw.get("medicalCareType")
        if kind is None or kind == "":
            item_class = "self"  # not classed by the insurance catalogue: the patient's own
        elif str(kind).strip() in LINE_CLASS:
            item_class = LINE_CLASS[str(kind).strip()]
        else:
            r.bad(f"{path}medicalCareType", f"must be 1 甲, 2 乙 or 3 丙, got {_shown(kind)}")
            item_class = "self"
        charge = raw.get("chargeCode") or only_charge
        if not charge:
            r.bad(f"{path}chargeCode", "is required: the bill has several charge categories")
        line: dict[str, Any] = {
            "code": r.text(raw, "code", path),
            "name": r.text(raw, "name", path),
            "class": item_class,
            "unit_price_e4": price if price is not None else -1,
            "quantity_milli": quantity if quantity is not None else -1,
            "amount": amount,
            "self_amount": self_amount,
            "self_rate_bp": _self_rate(r, raw, path, amount, self_amount),
            "charge": charge or "",
            "department": department or "",
            "time": when,
        }
        for key in ("form", "specification", "unit"):
            if isinstance(raw.get(key), str) and raw[key].strip():
                line[key] = raw[key].strip()
        out.append(line)
    return out


def _self_rate(r: _Reader, raw: Mapping[str, Any], path: str, amount: int, self_amount: int) -> int:
    """The line's self-pay share in basis points: 1 - medReimburseRate (医保报销比例, a
    fraction such as 0.90) when the HIS sends it, else what selfAmt is of amt."""
    if raw.get("medReimburseRate") not in (None, "") or raw.get("medCareReimburseRate") not in (
        None,
        "",
    ):
        key = (
            "medReimburseRate"
            if raw.get("medReimburseRate") not in (None, "")
            else ("medCareReimburseRate")
        )
        rate = r.scaled(raw, key, path, 4)
        if rate is None:
            return 0
        if rate > 10_000:
            r.bad(f"{path}{key}", f"is a fraction from 0 to 1, got {raw[key]}")
            return 0
        return 10_000 - rate
    if amount <= 0 or self_amount < 0:
        return 0
    return min(10_000, (self_amount * 10_000 + amount // 2) // amount)


def _patient(r: _Reader, request: Mapping[str, Any], salt: bytes) -> dict[str, str] | None:
    """The patient as the service keeps it (encrypted; only the commitment is signed): the
    ID number from idCardNo, or from cardNo when cardType is 1101 (身份证号码)."""
    id_number = request.get("idCardNo")
    if not id_number and str(request.get("cardType") or "").strip() == "1101":
        id_number = request.get("cardNo")
    if not isinstance(id_number, str) or not id_number.strip():
        r.bad(
            "request.idCardNo",
            "is required: the patient's ID number (or cardType 1101 with cardNo), which the"
            " citizen's claim is matched by; it is kept only as a salted commitment and an HMAC",
        )
        return None
    name = request.get("payer")
    if not isinstance(name, str) or not name.strip():
        r.bad("request.payer", "is required (the patient's name)")
        return None
    patient = {"id_number": id_number.strip(), "name": name.strip(), "salt": salt.hex()}
    sex = {"男": "M", "女": "F"}.get(str(request.get("sex") or "").strip())
    for key, value in (
        ("insurance_number", request.get("medicalInsuranceID")),
        ("sex", sex),
        ("age", request.get("age")),
    ):
        if isinstance(value, str) and value.strip():
            patient[key] = value.strip()
    return patient


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_export(
    export: Any, hospital: str, salt: bytes, received_at: datetime | None = None
) -> tuple[Invoice, HisBill]:
    """:func:`read_export` then ``parse_invoice``: the checked format-2 invoice of a HIS
    export. Raises ``InvoiceInvalid`` naming every problem in the interface's own terms."""
    bill = read_export(export, hospital, salt)
    try:
        return parse_invoice(bill.invoice, received_at), bill
    except InvoiceInvalid as exc:
        raise translate(exc, bill) from None
