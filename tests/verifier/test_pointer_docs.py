"""The pointer examples of docs/qr-format.md section 6 are true: each form parses and names the
bill of docs/invoice-format.md, each tax invoice is refused as one with the stated sentence."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

import pytest

from tests.conftest import ROOT
from verifier.pipeline import verify
from verifier.pointer import BillRecord, PointerQr, TaxInvoiceQr, matches, parse_pointer

DOC = (ROOT / "docs" / "qr-format.md").read_text(encoding="utf-8")
SECTION = DOC[DOC.index("## 6. ") : DOC.index("## 7. ")]
# The bill of docs/invoice-format.md's example.
RECORD = BillRecord(
    "33082025",
    "0000000001",
    "c00001",
    6450,
    datetime(2025, 3, 1, 10, 0, tzinfo=timezone(timedelta(hours=8))),
)


def example(name: str) -> str:
    match = re.search(rf"<!-- example:{name} -->\s*```text\n(.*?)```", SECTION, re.S)
    assert match, f"docs/qr-format.md section 6 has no example {name}"
    return match.group(1).strip()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "pointer-d",
            PointerQr("33082025", "0000000001", "c00001", 6450, date(2025, 3, 1), "url"),
        ),
        (
            "pointer-d-without-amount",
            PointerQr("33082025", "0000000001", "c00001", None, date(2025, 3, 1), "url"),
        ),
        (
            "pointer-named",
            PointerQr("33082025", "0000000001", "C00001", 6450, date(2025, 3, 1), "named"),
        ),
        (
            "pointer-named-short",
            PointerQr("33082025", "0000000001", "c00001", None, None, "named"),
        ),
    ],
)
def test_each_pointer_example_names_the_docs_bill(name: str, expected: PointerQr) -> None:
    pointer = parse_pointer(example(name))
    assert pointer == expected
    assert matches(pointer, RECORD) == []  # C00001 is c00001


@pytest.mark.parametrize(("name", "kind"), [("tax-vat", "vat"), ("tax-digital", "digital")])
def test_each_tax_invoice_example_is_refused_as_one(name: str, kind: str) -> None:
    with pytest.raises(TaxInvoiceQr) as caught:
        parse_pointer(example(name))
    assert caught.value.kind == kind
    step = verify(example(name), judge=None, facts=None, domain=None).steps[1]
    assert step.code == "tax_invoice_qr" and step.details["kind"] == kind


def test_the_stated_sentence_is_the_verdicts() -> None:
    zh, en = example("tax-sentence").splitlines()
    step = verify(example("tax-vat"), judge=None, facts=None, domain=None).steps[1]
    assert (step.message_zh, step.message_en) == (zh, en)
    digital = verify(example("tax-digital"), judge=None, facts=None, domain=None).steps[1]
    assert "全电发票" in digital.message_zh
    assert "a fully digital e-invoice (全电发票)" in digital.message_en
