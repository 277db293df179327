"""The printable invoice (医疗收费电子票据): A4 page images at 150 dpi, as PDF or PNG.

The pages follow the shape of a Chinese medical fiscal e-invoice: title, header fields, the
itemised detail (明细) paginated with its table header repeated, then on the last page the
totals, the self-verifying QR code and the ledger receipt (区块链存证). Money is printed from
integer fen with integer arithmetic only. The patient's ID number is never printed: the
invoice holds only a commitment to it, and a name that looks like one is refused.

Text is drawn with Noto Sans CJK SC (Debian package ``fonts-noto-cjk``), found at run time.

Memory is bounded by one page, whatever the number of lines: :func:`invoice_pages` draws each
page only when it is asked for, and :func:`pdf_chunks` writes each page to the PDF and lets it
go before the next is drawn. A page is 6.5 MB in memory (RGB) and about 350 KB in the PDF; the
20,000 lines an invoice may have make about 400 pages, printed in about 140 MB of memory in
all (the same print held every page at once: 4.6 GB). The PNG is the first page only, so it
draws one page.
"""

from __future__ import annotations

import io
import math
import re
import subprocess
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Final, Literal

from PIL import Image, ImageDraw, ImageFont

from verifier.invoice import DetailLine, Invoice, ItemClass, Scheme, VisitType
from verifier.qr import qr_png

DPI: Final = 150
PAGE_SIZE: Final = (1240, 1754)  # A4 at 150 dpi
CHINA_TIME: Final = timezone(timedelta(hours=8))
STATUSES: Final = {
    "pending": "待上链 pending",
    "anchored": "已上链 anchored",
    "voided": "已作废 voided",
}

FontStyle = Literal["regular", "bold", "mono"]
Field = tuple[str, str, str]  # Chinese label, English label, value
_FAMILY: Final = "Noto Sans CJK SC"
_MONO_FAMILY: Final = "Noto Sans Mono CJK SC"
_FONT_CANDIDATES: Final = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",  # Debian, Ubuntu
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",  # Arch
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",  # Fedora
    "/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf",
)
# The fiscal region (财政区划) is the first two digits of the bill code, as GB/T 2260.
_PROVINCES: Final = {
    "11": "北京市", "12": "天津市", "13": "河北省", "14": "山西省", "15": "内蒙古自治区",
    "21": "辽宁省", "22": "吉林省", "23": "黑龙江省", "31": "上海市", "32": "江苏省",
    "33": "浙江省", "34": "安徽省", "35": "福建省", "36": "江西省", "37": "山东省",
    "41": "河南省", "42": "湖北省", "43": "湖南省", "44": "广东省", "45": "广西壮族自治区",
    "46": "海南省", "50": "重庆市", "51": "四川省", "52": "贵州省", "53": "云南省",
    "54": "西藏自治区", "61": "陕西省", "62": "甘肃省", "63": "青海省", "64": "宁夏回族自治区",
    "65": "新疆维吾尔自治区",
}  # fmt: skip
_CLASS_LABELS: Final = {
    ItemClass.A: "甲",
    ItemClass.B: "乙",
    ItemClass.C: "丙",
    ItemClass.SELF_PAY: "自费",
}
_ID_NUMBER: Final = re.compile(r"[0-9]{15}|[0-9]{17}[0-9Xx]")

# Layout, in pixels at 150 dpi.
_LEFT, _RIGHT = 80, PAGE_SIZE[0] - 80
_INK, _GREY, _RULE, _RED = (20, 20, 20), (100, 100, 100), (170, 170, 170), (170, 30, 30)
_FIELDS_TOP, _FIELD_H, _HEAD_H, _ROW_H = 195, 40, 50, 30
_TABLE_BOTTOM = PAGE_SIZE[1] - 110
_RECEIPT_VALUE_X = _LEFT + 190
_QR_TARGET = 260  # about 4.4 cm: phones and pyzbar read it from a print or a page image
_CELL_STYLES: Final[tuple[FontStyle, ...]] = ("mono", "mono", "regular", "regular") + ("mono",) * 3
_COLUMNS: Final = (  # Chinese, English, width, alignment; the name column takes the rest
    ("序号", "No.", 60, "m"),
    ("编码", "Code", 250, "l"),
    ("名称", "Item", 0, "l"),
    ("类别", "Class", 70, "m"),
    ("单价", "Unit price", 120, "r"),
    ("数量", "Qty", 90, "r"),
    ("金额", "Amount", 130, "r"),
)


class PrintingError(Exception):
    """Root of the errors of invoice printing."""


class FontNotFound(PrintingError):
    """Raised when no Noto Sans CJK SC font is installed; ``searched`` lists where we looked."""

    def __init__(self, searched: Sequence[str]) -> None:
        self.searched = tuple(searched)
        super().__init__(
            f"no {_FAMILY} font found (looked in {', '.join(self.searched)} and asked fc-match);"
            " install the Debian package fonts-noto-cjk"
        )


class IdNumberInName(PrintingError):
    """Raised when the patient name to print contains what looks like an ID number (the name
    itself is not repeated in the message: it is personal data)."""

    def __init__(self) -> None:
        super().__init__("the patient name contains an ID number, which is never printed")


@dataclass(frozen=True)
class PrintedReceipt:
    """Where the invoice stands on the ledger, as printed in the receipt block (区块链存证)."""

    invoice_id: str  # hex
    record_hash: str  # hex
    leaf_index: int | None  # position in the log, None until appended
    checkpoint_size: int | None  # size of the first anchored checkpoint that covers it
    checkpoint_tx: str | None  # transaction that anchored that checkpoint
    chain_id: int
    contract: str
    status: str  # pending, anchored or voided

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {self.status!r}")


def format_yuan(fen: int) -> str:
    """Fen as yuan with two decimals, by integer arithmetic: 123456 -> ``1234.56``."""
    yuan, cents = divmod(abs(fen), 100)
    return f"{'-' if fen < 0 else ''}{yuan}.{cents:02d}"


def _unit_price(line: DetailLine) -> str:
    """A line's unit price as billed: to the fen, or to four decimals for format 2 (the
    e-bill interface's precision: 0.4167 a capsule)."""
    if line.details is None:
        return format_yuan(line.unit_price)
    e4 = line.details.unit_price_e4
    return f"{e4 // 10_000}.{e4 % 10_000:04d}"


def format_quantity(milli: int) -> str:
    """Thousandths as a decimal with trailing zeros trimmed: 2500 -> ``2.5``, 1000 -> ``1``."""
    whole, frac = divmod(abs(milli), 1000)
    text = f"{whole}.{frac:03d}".rstrip("0").rstrip(".")
    return f"-{text}" if milli < 0 else text


_DIGITS: Final = "零壹贰叁肆伍陆柒捌玖"


def yuan_in_words(fen: int) -> str:
    """The amount in financial capitals (大写) as on a bill: 123456 -> 壹仟贰佰叁拾肆元伍角陆分."""
    if fen < 0:
        raise ValueError(f"an amount in words is not negative, got {fen}")
    yuan, cents = divmod(fen, 100)
    jiao, fen_digit = divmod(cents, 10)
    if yuan == 0 and cents == 0:
        return "零元整"
    out = _integer_words(yuan) + "元" if yuan else ""
    if jiao:
        out += _DIGITS[jiao] + "角"
    elif yuan and fen_digit:
        out += "零"
    if fen_digit:
        out += _DIGITS[fen_digit] + "分"
    return out if cents else out + "整"


def _integer_words(n: int) -> str:
    groups = []
    while n:
        n, group = divmod(n, 10_000)
        groups.append(group)
    out, gap = "", False
    for i in reversed(range(len(groups))):
        group = groups[i]
        if group == 0:
            gap = bool(out)
            continue
        if out and (gap or group < 1000):
            out += "零"
        zero = False
        for power, unit in ((1000, "仟"), (100, "佰"), (10, "拾"), (1, "")):
            digit = group // power % 10
            if digit == 0:
                zero = zero or bool(out)
                continue
            out += ("零" if zero and not out.endswith("零") else "") + _DIGITS[digit] + unit
            zero = False
        out += ("", "万", "亿", "万亿", "亿亿")[i]
        gap = False
    return out


@lru_cache(maxsize=1)
def cjk_font_path() -> Path:
    """The font file holding Noto Sans CJK SC: a usual path, else fontconfig's answer.

    Raises ``FontNotFound``.
    """
    for candidate in _FONT_CANDIDATES:
        if Path(candidate).is_file() and _face_index(candidate, _FAMILY) is not None:
            return Path(candidate)
    try:
        found = subprocess.run(
            ["fc-match", "-f", "%{file}", _FAMILY], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        found = ""
    # fc-match always answers, with a fallback font if need be: check the family is there.
    if found and Path(found).is_file() and _face_index(found, _FAMILY) is not None:
        return Path(found)
    raise FontNotFound(_FONT_CANDIDATES)


@lru_cache(maxsize=16)
def _face_index(path: str, family: str) -> int | None:
    for index in range(16):  # a .ttc holds the JP, KR, SC, TC and HK faces, then the Mono ones
        try:
            face = ImageFont.truetype(path, 12, index=index)
        except OSError:
            return None
        if face.getname()[0] == family:
            return index
    return None


@lru_cache(maxsize=64)
def load_font(size: int, style: FontStyle = "regular") -> ImageFont.FreeTypeFont:
    """Noto Sans CJK SC at ``size`` px: regular, bold (if installed) or the monospaced face
    (for codes, hashes and numbers). Raises ``FontNotFound``."""
    regular = str(cjk_font_path())
    path, family = regular, _FAMILY
    if style == "bold":
        bold = regular.replace("Regular", "Bold")
        if Path(bold).is_file() and _face_index(bold, _FAMILY) is not None:
            path = bold
    elif style == "mono" and _face_index(regular, _MONO_FAMILY) is not None:
        family = _MONO_FAMILY
    return ImageFont.truetype(path, size, index=_face_index(path, family) or 0)


def fit_text(text: str, font: ImageFont.FreeTypeFont, width: float) -> str:
    """``text``, or its longest prefix followed by "…" that fits ``width`` pixels."""
    if font.getlength(text) <= width:
        return text
    low, high = 0, len(text)  # the longest fitting prefix is in [low, high)
    while high - low > 1:
        middle = (low + high) // 2
        if font.getlength(text[:middle] + "…") <= width:
            low = middle
        else:
            high = middle
    return text[:low] + "…"


@dataclass(frozen=True)
class InvoicePages:
    """The pages of a printable invoice, drawn one at a time as they are iterated (each page's
    image is the caller's to drop before the next is drawn); ``count`` is known beforehand."""

    count: int
    _draw: Callable[[int], Image.Image]

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[Image.Image]:
        return (self._draw(number) for number in range(1, self.count + 1))

    def page(self, number: int) -> Image.Image:
        """Page ``number`` (from 1) alone."""
        if not 1 <= number <= self.count:
            raise IndexError(f"the invoice has pages 1..{self.count}, not {number}")
        return self._draw(number)


def invoice_pages(
    invoice: Invoice,
    hospital_name: str,
    qr_text: str,
    receipt: PrintedReceipt,
    patient_name: str | None = None,
) -> InvoicePages:
    """The A4 pages (RGB, 1240x1754 px, 150 dpi) of the printable invoice, each drawn when
    asked for.

    Raises ``FontNotFound`` without the CJK font and ``IdNumberInName`` if ``patient_name``
    contains an ID number, at once (not at the first page). Each page's
    ``info["page_label"]`` is its "第 n/N 页" label.
    """
    if patient_name is not None and _ID_NUMBER.search(patient_name):
        raise IdNumberInName()
    qr = _qr_image(qr_text)
    fields = _first_fields(invoice, hospital_name, patient_name)
    first = (_TABLE_BOTTOM - _FIELDS_TOP - _FIELD_H * len(fields) - 28 - _HEAD_H) // _ROW_H
    following = (_TABLE_BOTTOM - _FIELDS_TOP - _FIELD_H - 28 - _HEAD_H) // _ROW_H
    receipt_lines = _receipt_lines(receipt, _RIGHT - qr.width - 30 - _RECEIPT_VALUE_X)
    closing_height = (
        20
        + (1 + len(_paid_rows(invoice))) * _FIELD_H
        + 20
        + max(44 + 28 * len(receipt_lines), qr.height + 40)
    )
    closing = math.ceil(closing_height / _ROW_H)
    chunks = _paginate(len(invoice.lines), first, following, closing)

    def draw(number: int) -> Image.Image:
        page = _Page()
        page.title(invoice)
        if number == 1:
            y = page.fields(fields)
        else:
            y = page.fields(
                [
                    [
                        ("票据代码", "Bill code", invoice.bill_code),
                        ("票据号码", "Bill no.", f"{invoice.bill_number}（续 continued）"),
                    ]
                ]
            )
        y = page.table(invoice, chunks[number - 1], y + 20)
        if number == len(chunks):
            page.closing(invoice, receipt_lines, qr, y + 20, receipt.status == "voided")
        label = f"第 {number}/{len(chunks)} 页"
        page.footer(invoice, f"{label} · page {number} of {len(chunks)}")
        if receipt.status == "voided":
            page.stamp()
        page.image.info["page_label"] = label
        return page.image

    return InvoicePages(len(chunks), draw)


def render_invoice(
    invoice: Invoice,
    hospital_name: str,
    qr_text: str,
    receipt: PrintedReceipt,
    patient_name: str | None = None,
) -> list[Image.Image]:
    """Every page of :func:`invoice_pages` at once, in a list: for short invoices and tests
    (each page holds 6.5 MB); raises as :func:`invoice_pages`."""
    return list(invoice_pages(invoice, hospital_name, qr_text, receipt, patient_name))


def pdf_chunks(pages: Iterable[Image.Image]) -> Iterator[bytes]:
    """The pages as one PDF at 150 dpi, written page by page: each page is drawn, encoded and
    let go before the next (JPEG at high quality without chroma subsampling, so that text stays
    sharp and the QR code scans).

    Objects: 1 the catalog, 2 the page tree (written last, when its pages are known), 3 the
    document information, then per page its image, its content and the page itself.
    """
    offsets: list[int] = []  # of object n + 1
    written = 0

    def obj(number: int, body: bytes, stream: bytes | None = None) -> bytes:
        nonlocal written
        while len(offsets) < number:
            offsets.append(0)
        offsets[number - 1] = written
        out = b"%d 0 obj\n" % number + body
        if stream is not None:
            out += b"\nstream\n" + stream + b"\nendstream"
        out += b"\nendobj\n"
        written += len(out)
        return out

    def emit(data: bytes) -> bytes:
        nonlocal written
        written += len(data)
        return data

    width_pt, height_pt = (f"{side * 72 / DPI:.2f}".rstrip("0").rstrip(".") for side in PAGE_SIZE)
    yield emit(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    yield obj(1, b"<< /Type /Catalog /Pages 2 0 R >>")
    yield obj(3, b"<< /Title (Medical e-invoice) /Creator (zeroclaim) /Producer (zeroclaim) >>")
    kids: list[bytes] = []
    for index, page in enumerate(pages):
        image_no, content_no, page_no = 4 + 3 * index, 5 + 3 * index, 6 + 3 * index
        jpeg = io.BytesIO()
        page.convert("RGB").save(jpeg, "JPEG", quality=90, subsampling=0, dpi=(DPI, DPI))
        del page  # the page's pixels go now, before the next page is drawn
        header = (
            b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceRGB"
            b" /BitsPerComponent 8 /Filter /DCTDecode /Length %d >>"
            % (PAGE_SIZE[0], PAGE_SIZE[1], jpeg.getbuffer().nbytes)
        )
        yield obj(image_no, header, jpeg.getvalue())
        del jpeg
        content = f"q {width_pt} 0 0 {height_pt} 0 0 cm /page Do Q".encode()
        yield obj(content_no, b"<< /Length %d >>" % len(content), content)
        yield obj(
            page_no,
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width_pt} {height_pt}]"
            f" /Resources << /XObject << /page {image_no} 0 R >> >>"
            f" /Contents {content_no} 0 R >>".encode(),
        )
        kids.append(b"%d 0 R" % page_no)
    if not kids:
        raise ValueError("a PDF needs at least one page")
    yield obj(2, b"<< /Type /Pages /Count %d /Kids [%s] >>" % (len(kids), b" ".join(kids)))
    xref_at = written
    table = b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    yield emit(b"xref\n0 %d\n0000000000 65535 f \n" % (len(offsets) + 1) + table)
    yield emit(
        b"trailer\n<< /Size %d /Root 1 0 R /Info 3 0 R >>\nstartxref\n%d\n%%%%EOF\n"
        % (len(offsets) + 1, xref_at)
    )


def invoice_pdf(pages: Iterable[Image.Image]) -> bytes:
    """The pages as one PDF (:func:`pdf_chunks`), in memory: for a short invoice; a long one
    should be streamed from :func:`pdf_chunks`."""
    return b"".join(pdf_chunks(pages))


def invoice_png(pages: InvoicePages | Sequence[Image.Image]) -> bytes:
    """The first page as a PNG at 150 dpi (of :class:`InvoicePages`, only that page is
    drawn)."""
    first = pages.page(1) if isinstance(pages, InvoicePages) else pages[0]
    out = io.BytesIO()
    first.save(out, "PNG", dpi=(DPI, DPI))
    return out.getvalue()


def _first_fields(
    invoice: Invoice, hospital_name: str, patient_name: str | None
) -> list[list[Field]]:
    issued = invoice.issued_at
    issued = issued.replace(tzinfo=CHINA_TIME) if issued.tzinfo is None else issued
    inpatient = invoice.visit_type is VisitType.INPATIENT
    rows: list[list[Field]] = [
        [
            ("票据代码", "Bill code", invoice.bill_code),
            ("票据号码", "Bill no.", invoice.bill_number),
        ],
        [
            ("校验码", "Check code", invoice.check_code),
            ("开票日期", "Issued", f"{issued.astimezone(CHINA_TIME):%Y-%m-%d %H:%M:%S} +08:00"),
        ],
        [("医疗机构", "Hospital", f"{hospital_name}（{invoice.hospital}）")],
        [
            ("就诊类型", "Visit", "住院 inpatient" if inpatient else "门诊 outpatient"),
            ("科室", "Department", invoice.department),
        ],
    ]
    if inpatient:
        admitted, discharged = invoice.admitted_on, invoice.discharged_on
        days = f"（{(discharged - admitted).days} 天 days）" if admitted and discharged else ""
        rows.append(
            [
                ("入院日期", "Admitted", str(admitted or "——")),
                ("出院日期", "Discharged", f"{discharged or '——'}{days}"),
            ]
        )
    if invoice.bill is not None:
        bill = invoice.bill
        rows.append(
            [
                ("业务流水号", "Business no.", bill.business_number),
                ("住院号" if inpatient else "门诊号", "Visit no.", bill.visit_number),
            ]
        )
        rows.append(
            [
                ("医保类型", "Scheme", _SCHEME_LABELS[bill.scheme]),
                ("就诊日期", "Visit date", str(bill.visit_on or invoice.admitted_on or "——")),
            ]
        )
    rows.append([("诊断", "ICD-10", "，".join(invoice.diagnoses) or "——")])
    rows.append(
        [
            ("患者", "Patient", patient_name or "——"),
            ("明细", "Lines", f"{len(invoice.lines)} 项 items"),
        ]
    )
    return rows


_SCHEME_LABELS = {
    Scheme.EMPLOYEE: "职工医保 employees",
    Scheme.RESIDENT: "城乡居民医保 residents",
    Scheme.NONE: "自费 not insured",
}


def _paid_rows(invoice: Invoice) -> list[list[Field]]:
    """The rows under the total: format 1's two payers; format 2's till split, the patient's
    shares and the charge categories (收费项目) with their totals, two to a row."""
    if invoice.bill is None:
        return [
            [
                ("医保统筹支付", "Insurance paid", format_yuan(invoice.insurance_paid)),
                ("个人支付", "Patient paid", format_yuan(invoice.patient_paid)),
            ]
        ]
    p = invoice.bill.payment
    fields: list[Field] = [
        ("统筹基金支付", "Pooled fund", format_yuan(p.fund)),
        ("个人账户支付", "Personal account", format_yuan(p.account)),
        ("其他支付", "Other funds", format_yuan(p.other)),
        ("个人现金支付", "Cash", format_yuan(p.cash)),
        ("个人自付", "Co-payment", format_yuan(p.copay)),
        ("个人自负", "Below deductible", format_yuan(p.deductible)),
        ("个人自费", "Self-pay", format_yuan(p.self_pay)),
        ("", "", ""),
    ]
    fields += [(c.name, c.code, format_yuan(c.amount)) for c in invoice.bill.charges]
    return [fields[i : i + 2] for i in range(0, len(fields), 2)]


def _paginate(count: int, first: int, following: int, closing: int) -> list[range]:
    """Rows per page: as many as fit, leaving ``closing`` rows free on the last page; when the
    rest fits on a page but not with the closing block, it is shared with the last page so
    that the totals do not stand under a single row."""
    if following - closing < 1:
        raise ValueError("the closing block does not fit on a page")
    chunks: list[range] = []
    start = 0
    while True:
        capacity = first if not chunks else following
        remaining = count - start
        if remaining <= capacity - closing:
            return [*chunks, range(start, count)]
        if remaining > capacity:
            take = capacity
        else:  # fits, but not with the closing block: share the rest with the last page
            take = max(remaining - (following - closing), remaining // 2)
        chunks.append(range(start, start + take))
        start += take


def _qr_image(text: str) -> Image.Image:
    with Image.open(io.BytesIO(qr_png(text, scale=1, border=4))) as probe:
        modules = probe.width
    scale = max(3, math.ceil(_QR_TARGET / modules))  # whole pixels per module stay crisp
    with Image.open(io.BytesIO(qr_png(text, scale=scale, border=4))) as qr:
        return qr.convert("L")


def _receipt_lines(receipt: PrintedReceipt, width: float) -> list[Field]:
    """The printed lines of the receipt block, long values wrapped to ``width`` pixels (a label
    only on the first line of its value)."""
    absent = "——"
    leaf, size = receipt.leaf_index, receipt.checkpoint_size
    rows = [
        ("状态", "Status", STATUSES[receipt.status]),
        ("票据ID", "Invoice id", receipt.invoice_id),
        ("记录哈希", "Record hash", receipt.record_hash),
        ("日志序号", "Leaf index", absent if leaf is None else str(leaf)),
        ("检查点", "Checkpoint", absent if size is None else f"size {size}"),
        ("上链交易", "Anchor tx", _abbreviate(receipt.checkpoint_tx or absent)),
        ("链ID", "Chain id", str(receipt.chain_id)),
        ("合约", "Contract", receipt.contract),
    ]  # fmt: skip
    mono = load_font(16, "mono")
    return [
        (zh, en, part) if i == 0 else ("", "", part)
        for zh, en, value in rows
        for i, part in enumerate(_wrap(value, mono, width))
    ]


def _abbreviate(value: str, keep: int = 10) -> str:
    head = keep + 2 if value.startswith("0x") else keep
    return value if len(value) <= head + keep + 1 else f"{value[:head]}…{value[-keep:]}"


def _wrap(text: str, font: ImageFont.FreeTypeFont, width: float) -> list[str]:
    lines = [""]
    for char in text:
        if lines[-1] and font.getlength(lines[-1] + char) > width:
            lines.append("")
        lines[-1] += char
    return lines


class _Page:
    """One page being drawn, block by block; a block of variable height returns the y below it."""

    def __init__(self) -> None:
        self.image = Image.new("RGB", PAGE_SIZE, "white")
        self.draw = ImageDraw.Draw(self.image)
        self.qr: tuple[Image.Image, tuple[int, int]] | None = None

    def text(
        self,
        xy: tuple[float, float],
        text: str,
        size: int = 18,
        style: FontStyle = "regular",
        fill: tuple[int, int, int] = _INK,
        anchor: str = "lm",
        width: float | None = None,
    ) -> None:
        font = load_font(size, style)
        shown = text if width is None else fit_text(text, font, width)
        self.draw.text(xy, shown, font=font, fill=fill, anchor=anchor)

    def title(self, invoice: Invoice) -> None:
        region = _PROVINCES.get(invoice.bill_code[:2], "")
        centre = PAGE_SIZE[0] / 2
        self.text((centre, 95), f"{region}医疗收费电子票据", 44, "bold", _RED, "mm")
        self.text((centre, 145), "Medical e-invoice (fiscal bill)", 20, fill=_GREY, anchor="mm")
        for y in (170, 175):
            self.draw.line([(_LEFT, y), (_RIGHT, y)], fill=_RED, width=2 if y == 170 else 1)

    def fields(self, rows: list[list[Field]]) -> int:
        y = _FIELDS_TOP
        half = (_RIGHT - _LEFT) // 2
        for row in rows:
            for column, (zh, en, value) in enumerate(row):
                x = _LEFT + 10 + column * half
                span = (_RIGHT - _LEFT - 20) if len(row) == 1 else half - 20
                self.text((x, y + _FIELD_H / 2), zh, 19, fill=_GREY)
                self.text((x + 82, y + _FIELD_H / 2), en, 13, fill=_GREY)
                self.text((x + 200, y + _FIELD_H / 2), value, 19, width=span - 200)
            y += _FIELD_H
        self.draw.rectangle([_LEFT, _FIELDS_TOP - 8, _RIGHT, y + 8], outline=_RULE)
        return y + 8

    def table(self, invoice: Invoice, rows: range, top: int) -> int:
        widths = [w or (_RIGHT - _LEFT - sum(c[2] for c in _COLUMNS)) for *_, w, _ in _COLUMNS]
        edges = [_LEFT + sum(widths[:i]) for i in range(len(widths) + 1)]
        self.draw.rectangle([_LEFT, top, _RIGHT, top + _HEAD_H], fill=(238, 238, 238))
        for (zh, en, _, align), x0, x1 in zip(_COLUMNS, edges, edges[1:], strict=False):
            self._cell(zh, x0, x1, top + 17, align, 17, "bold")
            self._cell(en, x0, x1, top + 37, align, 12, "regular", _GREY)
        y = top + _HEAD_H
        for i in rows:
            line = invoice.lines[i]
            if (i - rows.start) % 2:
                self.draw.rectangle([_LEFT, y, _RIGHT, y + _ROW_H], fill=(248, 248, 248))
            cells = (str(i + 1), line.code, line.name, _CLASS_LABELS[line.item_class],
                     _unit_price(line), format_quantity(line.quantity_milli),
                     format_yuan(line.amount))  # fmt: skip
            for (*_, align), x0, x1, cell, style in zip(
                _COLUMNS, edges, edges[1:], cells, _CELL_STYLES, strict=False
            ):
                self._cell(cell, x0, x1, y + _ROW_H / 2, align, 17, style)
            y += _ROW_H
        self.draw.rectangle([_LEFT, top, _RIGHT, y], outline=_RULE)
        for x in edges[1:-1]:
            self.draw.line([(x, top), (x, y)], fill=_RULE)
        self.draw.line([(_LEFT, top + _HEAD_H), (_RIGHT, top + _HEAD_H)], fill=_RULE)
        return y

    def _cell(
        self,
        text: str,
        x0: int,
        x1: int,
        y: float,
        align: str,
        size: int,
        style: FontStyle,
        fill: tuple[int, int, int] = _INK,
    ) -> None:
        pad = 8
        x = {"l": x0 + pad, "m": (x0 + x1) / 2, "r": x1 - pad}[align]
        self.text((x, y), text, size, style, fill, align + "m", x1 - x0 - 2 * pad)

    def closing(
        self, invoice: Invoice, receipt: list[Field], qr: Image.Image, top: int, voided: bool
    ) -> None:
        half = (_RIGHT - _LEFT) // 2
        self.fields_at(
            top,
            [
                ("合计（大写）", "In words", f"人民币 {yuan_in_words(invoice.total)}", _LEFT),
                ("合计", "Total", f"¥{format_yuan(invoice.total)}", _LEFT + half + 140),
            ],
        )
        paid = _paid_rows(invoice)
        for n, pair in enumerate(paid, start=1):
            self.fields_at(
                top + n * _FIELD_H,
                [
                    (zh, en, value, _LEFT + i * (half + 140))
                    for i, (zh, en, value) in enumerate(pair)
                ],
            )
        height = (1 + len(paid)) * _FIELD_H
        self.draw.rectangle([_LEFT, top, _RIGHT, top + height], outline=_RULE)
        y = top + height + 20
        qr_x = _RIGHT - qr.width
        self.qr = (qr, (qr_x, y))
        self.image.paste(qr, (qr_x, y))
        self.text((qr_x + qr.width / 2, y + qr.height + 14), "扫码查验 / scan to verify", 18,
                  anchor="mm")  # fmt: skip
        self.receipt(receipt, y, voided)

    def fields_at(self, top: int, fields: list[tuple[str, str, str, int]]) -> None:
        middle = top + _FIELD_H / 2
        for zh, en, value, x in fields:
            after_zh = x + 10 + load_font(19).getlength(zh) + 6
            self.text((x + 10, middle), zh, 19, fill=_GREY)
            self.text((after_zh, middle), en, 13, fill=_GREY)
            self.text((after_zh + load_font(13).getlength(en) + 14, middle), value, 20, "bold")

    def receipt(self, lines: list[Field], top: int, voided: bool) -> None:
        self.text((_LEFT, top + 16), "区块链存证 Ledger receipt", 20, "bold")
        for i, (zh, en, value) in enumerate(lines):
            y = top + 58 + 28 * i
            self.text((_LEFT, y), zh, 16, fill=_GREY)
            self.text((_LEFT + 74, y), en, 12, fill=_GREY)
            self.text((_RECEIPT_VALUE_X, y), value, 16, "mono", _RED if voided and i == 0 else _INK)

    def footer(self, invoice: Invoice, label: str) -> None:
        y = PAGE_SIZE[1] - 60
        self.draw.line([(_LEFT, y - 25), (_RIGHT, y - 25)], fill=_RULE)
        self.text((_LEFT, y), f"票据 {invoice.reference}", 15, fill=_GREY)
        self.text((PAGE_SIZE[0] / 2, y), label, 16, anchor="mm")
        self.text((_RIGHT, y), "zeroclaim", 15, fill=_GREY, anchor="rm")

    def stamp(self) -> None:
        font = load_font(120, "bold")
        text = "已作废 VOIDED"
        box = font.getbbox(text, anchor="lt")
        layer = Image.new("RGBA", (int(box[2]) + 80, int(box[3]) + 80), (0, 0, 0, 0))
        draw = ImageDraw.Draw(layer)
        draw.rounded_rectangle(
            [4, 4, layer.width - 5, layer.height - 5], 24, outline=_RED, width=10
        )
        draw.text((40, 40), text, font=font, fill=_RED, anchor="lt")
        layer = layer.rotate(25, expand=True, resample=Image.Resampling.BICUBIC)
        alpha = layer.getchannel("A").point(lambda a: a * 55 // 100)
        layer.putalpha(alpha)
        x = (PAGE_SIZE[0] - layer.width) // 2
        y = (PAGE_SIZE[1] - layer.height) // 2
        self.image.paste(layer, (x, y), layer)
        if self.qr is not None:  # the QR code stays scannable: it is how the void is verified
            self.image.paste(*self.qr)
