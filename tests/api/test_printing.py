"""The printable invoice: pages, pagination, QR code read back from the page, fonts, money."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from api.adapters import printing
from api.adapters.printing import (
    PAGE_SIZE,
    FontNotFound,
    IdNumberInName,
    PrintedReceipt,
    fit_text,
    format_quantity,
    format_yuan,
    invoice_pages,
    invoice_pdf,
    invoice_png,
    load_font,
    pdf_chunks,
    render_invoice,
    yuan_in_words,
)
from tests.api.conftest import World, invoice_json
from verifier.canonical import Domain, invoice_id, patient_commitment
from verifier.invoice import DetailLine, Invoice, ItemClass, VisitType, line_amount
from verifier.qr import decode_qr_image, encode_payload, payload_for

ISSUED = datetime(2024, 5, 6, 6, 30, tzinfo=UTC)
DOMAIN = Domain(5700, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
HOSPITAL_NAME = "温州医科大学附属第一医院"
CLASSES = (ItemClass.A, ItemClass.B, ItemClass.C, ItemClass.SELF_PAY)


def _line(code: str, name: str, item_class: ItemClass, price: int, quantity: int) -> DetailLine:
    amount = line_amount(price, quantity)
    return DetailLine(code, name, item_class, price, quantity, amount, "心血管内科", ISSUED)


def _invoice(lines: list[DetailLine], visit_type: VisitType, number: int) -> Invoice:
    total = sum(line.amount for line in lines)
    insured = total * 6 // 10
    inpatient = visit_type is VisitType.INPATIENT
    return Invoice(
        bill_code="33082025",
        bill_number=f"{number:010d}",
        check_code="a1B2c3",
        hospital="H33080200001",
        issued_at=ISSUED,
        visit_type=visit_type,
        admitted_on=date(2024, 4, 20) if inpatient else None,
        discharged_on=date(2024, 5, 5) if inpatient else None,
        department="心血管内科",
        diagnoses=("I10", "E11.9"),
        patient_commitment=patient_commitment("330802199001010011", b"s" * 16),
        total=total,
        insurance_paid=insured,
        patient_paid=total - insured,
        lines=tuple(lines),
    )


SHORT = _invoice(
    [
        _line("XC09AAA001A001010101001", "依那普利片（10mg×16片/盒）", ItemClass.A, 1250, 2000),
        _line("F001200003", "普通门诊诊查费", ItemClass.A, 2500, 1000),
        _line("ZA01BAB001B002020202002", "复方丹参滴丸" + "加长名称" * 20, ItemClass.B, 3275, 1500),
    ],
    VisitType.OUTPATIENT,
    42,
)
LONG = _invoice(
    [
        _line(f"X{i:04d}AAB001A001", f"检验项目{i}", CLASSES[i % 4], 100 + 37 * i, 1000 + 250 * i)
        for i in range(120)
    ],
    VisitType.INPATIENT,
    43,
)


def _receipt(invoice: Invoice, status: str = "anchored") -> PrintedReceipt:
    return PrintedReceipt(
        invoice_id="0x"
        + invoice_id(invoice.hospital, invoice.bill_code, invoice.bill_number).hex(),
        record_hash="0x" + "ab" * 32,
        leaf_index=17,
        checkpoint_size=32,
        checkpoint_tx="0x" + "cd" * 32,
        chain_id=DOMAIN.chain_id,
        contract=DOMAIN.contract,
        status=status,
    )


def _qr_text(invoice: Invoice) -> str:
    # Only the structure is checked when decoding, so any 65 bytes stand in for a signature.
    return encode_payload(payload_for(invoice, DOMAIN, bytes(64) + b"\x1b"))


def _png(page: Image.Image) -> bytes:
    out = io.BytesIO()
    page.save(out, "PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def short_pages() -> list[Image.Image]:
    return render_invoice(SHORT, HOSPITAL_NAME, _qr_text(SHORT), _receipt(SHORT), "张三")


@pytest.fixture(scope="module")
def long_pages() -> list[Image.Image]:
    return render_invoice(LONG, HOSPITAL_NAME, _qr_text(LONG), _receipt(LONG))


def test_qr_text_is_realistic() -> None:
    text = _qr_text(LONG)
    assert text.startswith("ZC1:")
    assert 250 < len(text) < 400
    assert re.fullmatch(r"[0-9A-Z $%*+\-./:]+", text)


def test_short_invoice_is_one_a4_page(short_pages: list[Image.Image]) -> None:
    assert len(short_pages) == 1
    page = short_pages[0]
    assert (page.size, page.mode) == (PAGE_SIZE, "RGB")
    assert page.getpixel((5, 5)) == (255, 255, 255)
    assert page.info["page_label"] == "第 1/1 页"


def test_long_invoice_paginates(long_pages: list[Image.Image]) -> None:
    count = len(long_pages)
    assert count > 1
    assert [p.info["page_label"] for p in long_pages] == [
        f"第 {n}/{count} 页" for n in range(1, count + 1)
    ]
    assert all(p.size == PAGE_SIZE for p in long_pages)
    footers = [p.crop((400, PAGE_SIZE[1] - 80, 840, PAGE_SIZE[1] - 40)) for p in long_pages]
    assert all(ImageChops.invert(f.convert("L")).getbbox() for f in footers)  # the label is inked
    assert ImageChops.difference(footers[0], footers[1]).getbbox() is not None


@pytest.mark.parametrize(
    ("count", "first", "following", "closing"),
    [(0, 30, 40, 10), (3, 30, 40, 10), (20, 30, 40, 10), (25, 30, 40, 10), (30, 30, 40, 10),
     (31, 30, 40, 10), (120, 36, 44, 14), (500, 36, 44, 14)],
)  # fmt: skip
def test_pagination_places_every_row_once(
    count: int, first: int, following: int, closing: int
) -> None:
    chunks = printing._paginate(count, first, following, closing)
    assert [i for chunk in chunks for i in chunk] == list(range(count))
    assert len(chunks[0]) <= first
    assert all(len(chunk) <= following for chunk in chunks[1:])
    assert len(chunks[-1]) <= (first if len(chunks) == 1 else following) - closing
    assert count == 0 or len(chunks[-1]) >= 1


def test_qr_reads_back_from_the_last_page_only(long_pages: list[Image.Image]) -> None:
    assert decode_qr_image(_png(long_pages[-1])) == [_qr_text(LONG)]
    assert decode_qr_image(_png(long_pages[0])) == []


@pytest.mark.parametrize("status", ["pending", "anchored", "voided"])
def test_qr_reads_back_from_a_short_invoice(status: str) -> None:
    pages = render_invoice(SHORT, HOSPITAL_NAME, _qr_text(SHORT), _receipt(SHORT, status))
    assert decode_qr_image(_png(pages[-1])) == [_qr_text(SHORT)]


def test_pages_are_saved_as_png(
    short_pages: list[Image.Image], long_pages: list[Image.Image], tmp_path: Path
) -> None:
    for name, pages in (("short", short_pages), ("long", long_pages)):
        for n, page in enumerate(pages, start=1):
            page.save(tmp_path / f"{name}-{n}.png")
    saved = sorted(p.name for p in tmp_path.iterdir())
    assert saved == sorted(
        [f"long-{n}.png" for n in range(1, len(long_pages) + 1)] + ["short-1.png"]
    )
    last = (tmp_path / f"long-{len(long_pages)}.png").read_bytes()
    assert decode_qr_image(last) == [_qr_text(LONG)]


def test_chinese_renders_with_real_glyphs() -> None:
    font = load_font(32)
    assert font.getname() == ("Noto Sans CJK SC", "Regular")
    masks = {}
    for char in ("票", "据", "\U0010fffd"):  # the last is a private-use code the font lacks
        mask = font.getmask(char)
        masks[char] = (mask.size, bytes(mask))
    glyph, other, missing = masks["票"], masks["据"], masks["\U0010fffd"]
    assert font.getmask("票").getbbox() is not None
    assert glyph != missing and other != missing and glyph != other
    assert sum(glyph[1]) > 0


def test_pdf_has_one_page_per_image(long_pages: list[Image.Image]) -> None:
    pdf = invoice_pdf(long_pages)
    assert pdf.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page\b", pdf)) == len(long_pages)
    assert b"595.2 841.92" in pdf  # A4 in points: the pages are 150 dpi


def test_png_is_the_first_page(long_pages: list[Image.Image]) -> None:
    with Image.open(io.BytesIO(invoice_png(long_pages))) as image:
        assert image.format == "PNG"
        assert image.size == PAGE_SIZE
        assert round(image.info["dpi"][0]) == 150
        assert ImageChops.difference(image.convert("RGB"), long_pages[0]).getbbox() is None


@pytest.mark.parametrize(
    ("fen", "text"), [(123456, "1234.56"), (5, "0.05"), (0, "0.00"), (100, "1.00"), (-5, "-0.05")]
)
def test_format_yuan(fen: int, text: str) -> None:
    assert format_yuan(fen) == text


@pytest.mark.parametrize(
    ("milli", "text"), [(2500, "2.5"), (1000, "1"), (1, "0.001"), (250, "0.25"), (12345, "12.345")]
)
def test_format_quantity(milli: int, text: str) -> None:
    assert format_quantity(milli) == text


@pytest.mark.parametrize(
    ("fen", "words"),
    [
        (123456, "壹仟贰佰叁拾肆元伍角陆分"),
        (0, "零元整"),
        (5, "伍分"),
        (50, "伍角"),
        (100, "壹元整"),
        (1005, "壹拾元零伍分"),
        (100100_00, "壹拾万零壹佰元整"),
        (101000_00, "壹拾万壹仟元整"),
        (1001_00, "壹仟零壹元整"),
        (1_0000_0001_00, "壹亿零壹元整"),
        (1_0001_0000_00, "壹亿零壹万元整"),
        (5716250, "伍万柒仟壹佰陆拾贰元伍角"),
    ],
)
def test_yuan_in_words(fen: int, words: str) -> None:
    assert yuan_in_words(fen) == words


def test_voided_stamp_covers_the_middle(short_pages: list[Image.Image]) -> None:
    voided = render_invoice(
        SHORT, HOSPITAL_NAME, _qr_text(SHORT), _receipt(SHORT, "voided"), "张三"
    )
    middle = (300, 700, 940, 1050)
    before, after = short_pages[0].crop(middle), voided[0].crop(middle)
    assert ImageChops.difference(before, after).getbbox() is not None
    red, green, _ = after.resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))  # type: ignore[misc]
    assert red > green + 10


def test_long_text_is_truncated_to_its_width() -> None:
    font = load_font(17)
    name = "复方丹参滴丸" + "加长名称" * 20
    shown = fit_text(name, font, 200)
    assert shown.endswith("…") and name.startswith(shown[:-1])
    assert font.getlength(shown) <= 200
    assert fit_text("普通门诊诊查费", font, 200) == "普通门诊诊查费"


def test_id_number_in_patient_name_is_refused() -> None:
    with pytest.raises(IdNumberInName, match="never printed") as caught:
        render_invoice(
            SHORT, HOSPITAL_NAME, _qr_text(SHORT), _receipt(SHORT), "张三330802199001010011"
        )
    assert not re.search(r"[0-9]{6}", str(caught.value))


def test_receipt_status_is_checked() -> None:
    with pytest.raises(ValueError, match="status must be one of"):
        _receipt(SHORT, "settled")


def test_font_found_by_fc_match(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(printing, "_FONT_CANDIDATES", ("/nonexistent/font.ttc",))
    printing.cjk_font_path.cache_clear()
    try:
        assert "CJK" in printing.cjk_font_path().name
    finally:
        printing.cjk_font_path.cache_clear()


def test_missing_font_names_the_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(printing, "_FONT_CANDIDATES", ("/nonexistent/font.ttc",))
    monkeypatch.setenv("PATH", "/nonexistent")
    printing.cjk_font_path.cache_clear()
    try:
        with pytest.raises(FontNotFound, match="fonts-noto-cjk") as caught:
            printing.cjk_font_path()
        assert caught.value.searched == ("/nonexistent/font.ttc",)
    finally:
        printing.cjk_font_path.cache_clear()


# Page by page: what a long invoice costs is one page (tests/api/test_memory.py measures it)


def test_pages_drawn_one_at_a_time_are_the_pages(long_pages: list[Image.Image]) -> None:
    pages = invoice_pages(LONG, HOSPITAL_NAME, _qr_text(LONG), _receipt(LONG))
    assert len(pages) == pages.count == len(long_pages)
    for drawn, whole in zip(pages, long_pages, strict=True):
        assert drawn.info["page_label"] == whole.info["page_label"]
        assert ImageChops.difference(drawn, whole).getbbox() is None
    assert ImageChops.difference(pages.page(pages.count), long_pages[-1]).getbbox() is None
    with pytest.raises(IndexError, match=f"pages 1..{pages.count}"):
        pages.page(pages.count + 1)


def test_a_refused_name_is_refused_before_any_page() -> None:
    with pytest.raises(IdNumberInName):
        invoice_pages(SHORT, HOSPITAL_NAME, _qr_text(SHORT), _receipt(SHORT), "330802199001010011")


def test_streamed_pdf_has_a_valid_cross_reference(long_pages: list[Image.Image]) -> None:
    pdf = b"".join(pdf_chunks(iter(long_pages)))
    assert pdf == invoice_pdf(long_pages)
    start = int(pdf.rsplit(b"startxref\n", 1)[1].split()[0])
    header, *entries = pdf[start:].split(b"trailer")[0].splitlines()[1:]
    count = int(header.split()[1])
    assert count == 4 + 3 * len(long_pages) == len(entries)
    for number, entry in enumerate(entries[1:], start=1):  # entry 0 is the free list head
        offset = int(entry.split()[0])
        assert pdf[offset:].startswith(b"%d 0 obj\n" % number)
    assert b"/Count %d " % len(long_pages) in pdf
    with pytest.raises(ValueError, match="at least one page"):
        invoice_pdf([])


@pytest.mark.skipif(shutil.which("gs") is None, reason="Ghostscript (gs) is not installed")
def test_ghostscript_reads_the_pdf_and_its_qr_code(tmp_path: Path) -> None:
    pages = invoice_pages(LONG, HOSPITAL_NAME, _qr_text(LONG), _receipt(LONG))
    (tmp_path / "long.pdf").write_bytes(b"".join(pdf_chunks(pages)))
    gs = ["gs", "-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-sDEVICE=png16m", "-r150"]
    out = tmp_path / "page-%d.png"
    subprocess.run([*gs, f"-sOutputFile={out}", str(tmp_path / "long.pdf")], check=True)
    rendered = sorted(tmp_path.glob("page-*.png"))
    assert len(rendered) == pages.count
    last = tmp_path / f"page-{pages.count}.png"
    assert decode_qr_image(last.read_bytes()) == [_qr_text(LONG)]


def test_png_of_pages_drawn_lazily_is_the_first_page(long_pages: list[Image.Image]) -> None:
    pages = invoice_pages(LONG, HOSPITAL_NAME, _qr_text(LONG), _receipt(LONG))
    assert invoice_png(pages) == invoice_png(long_pages)


def test_print_route_streams_the_pdf_and_counts_the_pages(world: World) -> None:
    lines = [dict(invoice_json(1)["lines"][i % 3]) for i in range(150)]
    total = sum(int(line["amount"]) for line in lines)
    world.upload([world.item(1, lines=lines, total=total, patient_paid=total)])
    pdf = world.read("/api/v1/invoices/33082025-0000000001/print.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    pages = int(pdf.headers["X-Page-Count"])
    assert pages == 4  # 150 lines of 30 px rows on A4 at 150 dpi
    assert len(re.findall(rb"/Type\s*/Page\b", pdf.content)) == pages
    assert pdf.content.endswith(b"%%EOF\n")
    png = world.read("/api/v1/invoices/33082025-0000000001/print.png")
    assert png.status_code == 200 and png.headers["X-Page-Count"] == str(pages)
    with Image.open(io.BytesIO(png.content)) as first:
        assert first.size == PAGE_SIZE


def test_a_format_2_bill_prints_its_split_and_its_categories() -> None:
    """The split and the categories are on the page: a bill that differs only in how the
    account and cash shared the patient's part prints differently, below the table."""
    from tests.format2 import bill
    from verifier.invoice import parse_invoice

    invoice = parse_invoice(bill())
    data = bill()
    data["payment"].update(account=1100, cash=1600)
    other = parse_invoice(data)
    pages = render_invoice(invoice, HOSPITAL_NAME, _qr_text(invoice), _receipt(invoice, "pending"))
    assert len(pages) == 1
    assert decode_qr_image(_png(pages[-1])) == [_qr_text(invoice)]
    again = render_invoice(other, HOSPITAL_NAME, _qr_text(invoice), _receipt(invoice, "pending"))
    diff = ImageChops.difference(pages[0], again[0]).getbbox()
    assert diff is not None
    # Only the split differs (and the detail root is not printed): below the lines' table.
    assert diff[1] > 700, diff
