"""The pointer QR of fiscal e-bills (verifier/pointer.py): vectors of the d and named forms and
of tax invoice QR codes (refused as such), money, matching without regard to case, a fuzzer."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verifier.pointer import (
    MAX_POINTER_CHARS,
    BillRecord,
    Mismatch,
    PointerForm,
    PointerMalformed,
    PointerQr,
    TaxInvoiceQr,
    looks_like_pointer,
    matches,
    parse_pointer,
    yuan_to_fen,
)
from verifier.qr import QrError

VECTORS = Path(__file__).resolve().parent / "vectors" / "pointer"
VECTOR_NAMES = sorted(p.stem for p in VECTORS.glob("*.json"))
CST = timezone(timedelta(hours=8))


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / f"{name}.json").read_text(encoding="utf-8"))
    return data


VALID_NAMES = [n for n in VECTOR_NAMES if load(n)["expected_error"] is None]
MALFORMED_NAMES = [n for n in VECTOR_NAMES if load(n)["expected_error"] == "PointerMalformed"]
TAX_NAMES = [n for n in VECTOR_NAMES if load(n)["expected_error"] == "TaxInvoiceQr"]


# -- vectors -------------------------------------------------------------------------------------


def test_vector_files_are_complete() -> None:
    assert len(VALID_NAMES) >= 10 and len(MALFORMED_NAMES) >= 30 and len(TAX_NAMES) >= 6
    assert {load(n)["expected"]["form"] for n in VALID_NAMES} == {"url", "named"}
    assert {load(n)["kind"] for n in TAX_NAMES} == {"vat", "digital", "other"}
    for name in VECTOR_NAMES:
        vector = load(name)
        assert vector["description"] and vector["derivation"] and isinstance(vector["input"], str)
        if vector["expected_error"] is None:
            assert set(vector["expected"]) == {
                "bill_code",
                "bill_number",
                "check_code",
                "amount_fen",
                "issued_on",
                "form",
            }, name
        else:
            assert vector["expected_error"] in ("PointerMalformed", "TaxInvoiceQr"), name
            assert vector["reason"] and "expected" not in vector, name
        if vector["expected_error"] == "TaxInvoiceQr":
            assert vector["kind"] in ("vat", "digital", "other") and vector["type_code"], name


@pytest.mark.parametrize("name", VALID_NAMES)
def test_valid_vector_parses_to_its_fields(name: str) -> None:
    vector = load(name)
    expected = vector["expected"]
    pointer = parse_pointer(vector["input"])
    issued_on = expected["issued_on"]
    assert pointer == PointerQr(
        bill_code=expected["bill_code"],
        bill_number=expected["bill_number"],
        check_code=expected["check_code"],
        amount_fen=expected["amount_fen"],
        issued_on=date.fromisoformat(issued_on) if issued_on is not None else None,
        form=expected["form"],
    )
    assert looks_like_pointer(vector["input"])


@pytest.mark.parametrize("name", MALFORMED_NAMES)
def test_malformed_vector_is_refused_for_its_reason(name: str) -> None:
    vector = load(name)
    with pytest.raises(PointerMalformed) as caught:
        parse_pointer(vector["input"])
    assert type(caught.value) is PointerMalformed  # not taken for a tax invoice
    assert vector["reason"] in caught.value.reason
    assert str(caught.value).startswith("malformed pointer QR: ")


@pytest.mark.parametrize("name", TAX_NAMES)
def test_tax_invoice_vector_is_refused_as_a_tax_invoice(name: str) -> None:
    """The holder is told, in both languages, that this is a tax invoice and cannot be claimed."""
    vector = load(name)
    with pytest.raises(TaxInvoiceQr) as caught:
        parse_pointer(vector["input"])
    refusal = caught.value
    assert (refusal.kind, refusal.type_code) == (vector["kind"], vector["type_code"])
    zh, en = refusal.reason.split("；")
    assert zh == f"这是{refusal.invoice_zh}的二维码，不是医疗电子票据，不能在此报销"
    assert en == (
        f"this is the QR code of {refusal.invoice_en}, not of a medical e-bill:"
        " it cannot be claimed here"
    )
    assert vector["reason"] in refusal.reason
    assert str(refusal) == f"not a medical e-bill: {refusal.reason}"
    assert looks_like_pointer(vector["input"])  # routed here, so that it gets this sentence


@pytest.mark.parametrize(
    ("kind", "zh", "en"),
    [
        ("vat", "增值税发票", "a VAT invoice (增值税发票)"),
        ("digital", "全电发票", "a fully digital e-invoice (全电发票)"),
        ("other", "税务发票", "a tax invoice (发票)"),
    ],
)
def test_each_kind_of_tax_invoice_is_named(kind: str, zh: str, en: str) -> None:
    refusal = TaxInvoiceQr(kind, "99")  # type: ignore[arg-type]
    assert zh in refusal.invoice_zh and refusal.invoice_en == en
    assert isinstance(refusal, PointerMalformed) and isinstance(refusal, QrError)


def test_pointer_malformed_is_a_qr_error() -> None:
    assert issubclass(PointerMalformed, QrError)
    with pytest.raises(QrError, match="empty text"):
        parse_pointer("")


def test_non_text_input_is_refused() -> None:
    with pytest.raises(PointerMalformed, match="a pointer QR is text, got bytes"):
        parse_pointer(b"https://x/?d=33082025_0000000001_c00001_20250301")  # type: ignore[arg-type]
    assert not looks_like_pointer(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://pjcy.zjzwfw.gov.cn/?d=1_2_3_4", True),  # the shape, not the content
        ("HTTPS://PJCY.ZJZWFW.GOV.CN/?d=1", True),
        ("https://pjcy.zjzwfw.gov.cn/index.html", False),
        ("https://x/h5?billBatchCode=1", True),
        ("https://x/h5?invoice_number=1", True),
        ("https://x/h5?random=1", True),
        ("https://x/h5?BillBatchCode=1", False),  # names match exactly
        ("01,03,x", True),  # a tax invoice's QR: routed to parse_pointer for its sentence
        ("  01,03,x\n", True),
        ("02,03,x", False),
        ("ZC1:LVHW73WS8", False),
        ("", False),
        ("https://x/?d=" + "1" * MAX_POINTER_CHARS, False),
    ],
)
def test_looks_like_pointer(text: str, expected: bool) -> None:
    assert looks_like_pointer(text) is expected


def test_constructing_validates() -> None:
    good = PointerQr("33082025", "0000000001", "c00001", 6450, date(2025, 3, 1), "url")
    assert good.amount_fen == 6450
    with pytest.raises(PointerMalformed, match="bill code must be 8 digits"):
        PointerQr("3308202", "0000000001", "c00001", 6450, None, "url")
    with pytest.raises(PointerMalformed, match="non-negative integer of fen"):
        PointerQr("33082025", "0000000001", "c00001", -1, None, "url")
    with pytest.raises(PointerMalformed, match="form must be"):
        PointerQr("33082025", "0000000001", None, None, None, "csv")  # type: ignore[arg-type]
    assert PointerQr("33082025", "0000000001", "C00001", None, None, "named").check_code == "C00001"


# -- money ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("yuan", "fen"),
    [
        ("123.45", 12345),
        ("123.4", 12340),
        ("123.40", 12340),
        ("123", 12300),
        ("0", 0),
        ("0.5", 50),
        ("0.05", 5),
        ("0.10", 10),
        ("19.99", 1999),  # float(19.99) * 100 = 1998.9999999999998: why no float
        ("1.15", 115),  # float(1.15) * 100 = 114.99999999999999
        ("9999999999999999.99", 999_999_999_999_999_999),
    ],
)
def test_yuan_to_fen_is_exact(yuan: str, fen: int) -> None:
    assert yuan_to_fen(yuan) == fen


@pytest.mark.parametrize(
    "yuan",
    [
        "123.456",
        "-1",
        "+1",
        "1e3",
        "",
        " 1",
        "1 ",
        "1_000",
        "1,000",
        ".5",
        "5.",
        "00.5",
        "01",
        "١٢٣",
        "１２３",
        "NaN",
        "inf",
        "10000000000000000",
    ],
)
def test_yuan_to_fen_refuses(yuan: str) -> None:
    with pytest.raises(PointerMalformed, match="amount must be yuan"):
        yuan_to_fen(yuan)


# -- matching ------------------------------------------------------------------------------------

RECORD = BillRecord(
    bill_code="33082025",
    bill_number="0000000001",
    check_code="c00001",
    total_fen=6450,
    issued_at=datetime(2025, 3, 1, 10, 0, tzinfo=CST),
)
SAME = PointerQr("33082025", "0000000001", "c00001", 6450, date(2025, 3, 1), "url")


def _with(**changes: Any) -> PointerQr:
    return dataclasses.replace(SAME, **changes)


@pytest.mark.parametrize(
    ("pointer", "expected"),
    [
        (SAME, []),
        (_with(form="named"), []),
        (_with(amount_fen=None), []),  # absent amount: not compared
        (_with(issued_on=None), []),  # absent date: not compared
        (_with(amount_fen=None, issued_on=None), []),
        (_with(bill_code="33082026"), [Mismatch("bill_code", "33082025", "33082026")]),
        (_with(bill_number="0000000002"), [Mismatch("bill_number", "0000000001", "0000000002")]),
        (_with(bill_number="00000001"), [Mismatch("bill_number", "0000000001", "00000001")]),
        (_with(check_code="c00002"), [Mismatch("check_code", "c00001", "c00002")]),
        (_with(check_code="C00001"), []),  # 校验码 compared without regard to case
        (_with(check_code="C00002"), [Mismatch("check_code", "c00001", "C00002")]),
        (_with(check_code=None), [Mismatch("check_code", "c00001", None)]),  # absent: mismatch
        (_with(amount_fen=6451), [Mismatch("amount_fen", 6450, 6451)]),
        (_with(amount_fen=0), [Mismatch("amount_fen", 6450, 0)]),
        (
            _with(issued_on=date(2025, 2, 28)),
            [Mismatch("issued_on", date(2025, 3, 1), date(2025, 2, 28))],
        ),
        (
            _with(bill_code="33082026", amount_fen=1, issued_on=date(2025, 3, 2)),
            [
                Mismatch("bill_code", "33082025", "33082026"),
                Mismatch("amount_fen", 6450, 1),
                Mismatch("issued_on", date(2025, 3, 1), date(2025, 3, 2)),
            ],
        ),
    ],
)
def test_matches(pointer: PointerQr, expected: list[Mismatch]) -> None:
    assert matches(pointer, RECORD) == expected


@pytest.mark.parametrize(
    ("issued_at", "local_day"),
    [
        (datetime(2025, 2, 28, 16, 0, tzinfo=UTC), date(2025, 3, 1)),  # 00:00 in China
        (datetime(2025, 3, 1, 15, 59, 59, tzinfo=UTC), date(2025, 3, 1)),  # 23:59:59 in China
        (datetime(2025, 3, 1, 16, 0, tzinfo=UTC), date(2025, 3, 2)),
        (datetime(2025, 2, 28, 15, 59, 59, tzinfo=UTC), date(2025, 2, 28)),
        (datetime(2025, 3, 1, 1, 0, tzinfo=timezone(timedelta(hours=-5))), date(2025, 3, 1)),
    ],
)
def test_date_is_compared_in_china_standard_time(issued_at: datetime, local_day: date) -> None:
    record = BillRecord("33082025", "0000000001", "c00001", 6450, issued_at)
    assert matches(_with(issued_on=local_day), record) == []
    other = local_day + timedelta(days=1)
    assert matches(_with(issued_on=other), record) == [Mismatch("issued_on", local_day, other)]


def test_matches_refuses_a_naive_record_time() -> None:
    record = BillRecord("33082025", "0000000001", "c00001", 6450, datetime(2025, 3, 1, 10))
    with pytest.raises(ValueError, match="timezone-aware"):
        matches(SAME, record)


def test_url_vector_matches_the_docs_invoice() -> None:
    """The valid vectors name the invoice of docs/invoice-format.md; every form matches its
    record, an upper-case check code included."""
    for name in VALID_NAMES:
        pointer = parse_pointer(load(name)["input"])
        if pointer.bill_number == RECORD.bill_number and pointer.amount_fen in (None, 6450):
            assert matches(pointer, RECORD) == [], name
    assert matches(parse_pointer(load("named_upper_case_check_code")["input"]), RECORD) == []


def test_record_check_code_in_upper_case_matches_a_lower_case_pointer() -> None:
    upper = dataclasses.replace(RECORD, check_code="4BA882")
    assert matches(_with(check_code="4ba882"), upper) == []
    assert matches(_with(check_code="4Ba882"), upper) == []
    assert matches(_with(check_code="4ba883"), upper) == [
        Mismatch("check_code", "4BA882", "4ba883")
    ]


# -- properties ----------------------------------------------------------------------------------

_FRAGMENTS = st.sampled_from(
    [
        "https://",
        "http://",
        "HTTPS://",
        "pjcy.zjzwfw.gov.cn",
        "/",
        "?",
        "#",
        "&",
        "=",
        "d=",
        "d",
        "_",
        ",",
        "01,",
        "01",
        "03",
        "10",
        "32",
        "billBatchCode=",
        "billNo=",
        "random=",
        "invoice_code=",
        "totalAmt=",
        "ivcDateTime=",
        "20250301100000000",
        "%",
        "%5F",
        "%25",
        "%ZZ",
        "%E4%B8",
        "[",
        "]",
        ":",
        "@",
        ".",
        "-",
        " ",
        "\n",
        "\t",
        "\x00",
        "33082025",
        "0000000001",
        "00000001",
        "c00001",
        "64.50",
        "64.505",
        "0",
        "20250301",
        "2025-03-01",
        "20250230",
        "９",
        "١",
        "票",
        "\ud800",
    ]
)


def _mutate(seed: str, edits: list[tuple[int, int, str]]) -> str:
    """Replace ``length`` characters at ``at`` (modulo the length) with ``insert``, per edit."""
    for at, length, insert in edits:
        at %= len(seed) + 1
        seed = seed[:at] + insert + seed[at + length :]
    return seed


_NEAR_VALID = st.builds(
    _mutate,
    st.sampled_from([load(name)["input"] for name in VALID_NAMES]),
    st.lists(
        st.tuples(st.integers(0, 300), st.integers(0, 3), _FRAGMENTS | st.text(max_size=3)),
        max_size=3,
    ),
)
_TEXTS = st.one_of(
    _NEAR_VALID,
    _NEAR_VALID,
    st.text(max_size=200),
    st.lists(_FRAGMENTS, max_size=24).map("".join),
    st.lists(st.one_of(_FRAGMENTS, st.text(max_size=4)), max_size=24).map("".join),
)


@settings(max_examples=1500, deadline=None)
@given(_TEXTS)
def test_parse_never_raises_anything_but_malformed(text: str) -> None:
    try:
        pointer = parse_pointer(text)
    except PointerMalformed:
        return
    assert isinstance(pointer, PointerQr)
    assert looks_like_pointer(text)  # everything accepted looks like a pointer


_DIGITS = "0123456789"
_ALNUM = _DIGITS + "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


@settings(max_examples=300, deadline=None)
@given(
    code=st.text(_DIGITS, min_size=8, max_size=8),
    number=st.text(_DIGITS, min_size=8, max_size=10),
    check=st.text(_ALNUM, min_size=6, max_size=6),
    fen=st.none() | st.integers(0, 10**18 - 1),
    day=st.dates(date(1990, 1, 1), date(2099, 12, 31)),
    dashed=st.booleans(),
    form=st.sampled_from(["url", "bosssoft", "invoice"]),
)
def test_printed_elements_parse_back(
    code: str,
    number: str,
    check: str,
    fen: int | None,
    day: date,
    dashed: bool,
    form: str,
) -> None:
    printed_day = day.isoformat() if dashed else day.strftime("%Y%m%d")
    yuan = None if fen is None else f"{fen // 100}.{fen % 100:02d}"
    issued_on: date | None = day
    if form == "bosssoft":
        text = f"https://x.example/h5?billBatchCode={code}&billNo={number}&random={check}"
        text += "" if yuan is None else f"&totalAmt={yuan}"
        text += f"&ivcDateTime={day.strftime('%Y%m%d')}235959999"
    elif form == "invoice":
        text = f"https://x.example/?invoice_code={code}&invoice_number={number}&check_code={check}"
        text += "" if yuan is None else f"&totalAmt={yuan}"
        issued_on = None
    elif yuan is None:
        text = f"https://pjcy.zjzwfw.gov.cn/?d={code}_{number}_{check}_{printed_day}"
    else:
        text = f"https://pjcy.zjzwfw.gov.cn/?d={code}_{number}_{check}_{yuan}_{printed_day}"
    kind: PointerForm = "url" if form == "url" else "named"
    assert parse_pointer(text) == PointerQr(code, number, check, fen, issued_on, kind)


@settings(max_examples=300, deadline=None)
@given(
    type_code=st.text(_DIGITS, min_size=2, max_size=2),
    code=st.sampled_from(["", "0330021006", "033002100611"]),
    number=st.text(_DIGITS, min_size=8, max_size=8) | st.text(_DIGITS, min_size=20, max_size=20),
    rest=st.lists(st.text(_ALNUM + ".", max_size=20), max_size=5),
)
def test_every_tax_invoice_layout_is_refused_as_a_tax_invoice(
    type_code: str, code: str, number: str, rest: list[str]
) -> None:
    text = ",".join(["01", type_code, code, number, *rest])
    with pytest.raises(TaxInvoiceQr) as caught:
        parse_pointer(text)
    if type_code in ("31", "32") or (code == "" and len(number) == 20):
        assert caught.value.kind == "digital"
    elif type_code in ("01", "04", "08", "10", "11", "14"):
        assert caught.value.kind == "vat"
    else:
        assert caught.value.kind == "other"


# -- through the verifier -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "zh", "en"),
    [
        ("tax_vat_electronic", "增值税发票", "a VAT invoice (增值税发票)"),
        ("tax_fully_digital_ordinary", "全电发票", "a fully digital e-invoice (全电发票)"),
        ("tax_other_type", "税务发票", "a tax invoice (发票)"),
    ],
)
def test_the_verdict_on_a_tax_invoice_says_it_cannot_be_claimed(
    name: str, zh: str, en: str
) -> None:
    from verifier.pipeline import verify

    verdict = verify(load(name)["input"], judge=None, facts=None, domain=None)
    assert not verdict.valid and verdict.failed_step == "parse"
    step = verdict.steps[1]
    assert step.code == "tax_invoice_qr" and step.details["kind"] == load(name)["kind"]
    assert step.message_zh.startswith(f"这是{zh}")
    assert step.message_zh.endswith("的二维码，不是医疗电子票据，不能在此报销")
    assert step.message_en == (
        f"This is the QR code of {en}, not of a medical e-bill: it cannot be claimed here"
    )
    assert verdict.reference is None  # nothing names a bill: no failed attempt is counted


def test_the_verdict_on_a_malformed_pointer_is_still_qr_malformed() -> None:
    from verifier.pipeline import verify

    verdict = verify(load("named_bill_code_twice")["input"], judge=None, facts=None, domain=None)
    assert verdict.failed_step == "parse" and verdict.steps[1].code == "qr_malformed"
    assert "names the bill code twice" in verdict.steps[1].message_en
