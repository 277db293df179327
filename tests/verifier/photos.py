"""A deterministic set of phone photos of a printed invoice, for the QR decoder's tests and bench.

The source is the last page of a real invoice rendered by
``api.adapters.printing.render_invoice`` (A4 at 150 dpi, a QR code of about 4 px per module)
carrying a real signed ``ZC1:`` payload of 303 characters. Each photo is that page as a phone
would see it: the camera's frame is a quadrilateral on the page (the whole page with the desk
around it, or a close-up of the code with the printed receipt beside it), tilted and in
perspective, resampled to the phone's resolution, then degraded by lighting, blur, sensor
noise, a quarter turn and JPEG compression. The code always stays in the frame with its quiet
zone, as when a citizen aims at it.

Every photo is one draw from ``random.Random(f"{seed}:{index}")``, so a photo does not depend
on how many others are drawn. One photo in four is "severe": one or two of its degradations are
drawn from a harsher range (a smaller or farther page, a stronger blur, noise, darker or
brighter light, lower JPEG quality, a steeper perspective). The rest are "moderate": what a
citizen's photo of an invoice on a desk looks like, which the decoder must read.

Pillow only (no numpy): noise is seeded random bytes, not ``Image.effect_noise``, which is slow
and not seeded.
"""

from __future__ import annotations

import hashlib
import io
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, Final, Literal

from PIL import Image, ImageChops, ImageFilter

from api.adapters.printing import PrintedReceipt, render_invoice
from verifier.canonical import (
    Domain,
    SignedFields,
    invoice_id,
    patient_commitment,
    sign_digest,
    signing_digest,
)
from verifier.invoice import DetailLine, Invoice, ItemClass, VisitType
from verifier.qr import encode_payload, payload_for

Severity = Literal["moderate", "severe"]
Point = tuple[float, float]

CST: Final = timezone(timedelta(hours=8))
DOMAIN: Final = Domain(5700, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
HOSPITAL_KEY: Final = hashlib.sha256(b"zeroclaim photo test hospital key").digest()
HOSPITAL_NAME: Final = "温州医科大学附属第一医院"
SEVERE_EVERY: Final = 4  # photo i is severe when i % 4 == 3
MODULE: Final = 4  # pixels per QR module on the 150 dpi page


@dataclass(frozen=True)
class Photo:
    """One phone photo: its JPEG bytes, the payload its code carries and how it was degraded."""

    name: str
    severity: Severity
    params: dict[str, Any] = field(hash=False)
    data: bytes = field(repr=False)
    text: str = field(repr=False)

    def image(self) -> Image.Image:
        """The decoded photo (RGB), for tests that bypass the byte path."""
        with Image.open(io.BytesIO(self.data)) as image:
            return image.convert("RGB")


def sample_invoice() -> Invoice:
    """An outpatient invoice of three lines, 286.50 yuan."""
    issued = datetime(2025, 3, 14, 9, 26, 53, tzinfo=CST)
    lines = (
        DetailLine("XA01AAA012A001", "阿莫西林胶囊", ItemClass.A, 1450, 2000, 2900, "内科", issued),
        DetailLine("F00000000001", "普通门诊诊查费", ItemClass.A, 1000, 1000, 1000, "内科", issued),
        DetailLine(
            "XB05BAB089B002", "葡萄糖注射液", ItemClass.B, 24750, 1000, 24750, "内科", issued
        ),
    )
    return Invoice(
        bill_code="44010125",
        bill_number="0012345678",
        check_code="A3F29C",
        hospital="H44010600123",
        issued_at=issued,
        visit_type=VisitType.OUTPATIENT,
        admitted_on=None,
        discharged_on=None,
        department="内科",
        diagnoses=("J06.9",),
        patient_commitment=patient_commitment("11010519491231002X", b"zeroclaim salt16"),
        total=28650,
        insurance_paid=17190,
        patient_paid=11460,
        lines=lines,
    )


@lru_cache(maxsize=1)
def payload_text() -> str:
    """The signed QR payload of :func:`sample_invoice` (303 characters, ``ZC1:...``)."""
    invoice = sample_invoice()
    fields = SignedFields.of(invoice)
    signature = sign_digest(HOSPITAL_KEY, signing_digest(DOMAIN, fields.record_hash()))
    return encode_payload(payload_for(invoice, DOMAIN, signature))


@lru_cache(maxsize=1)
def _page_and_code() -> tuple[Image.Image, tuple[int, int, int, int]]:
    invoice = sample_invoice()
    receipt = PrintedReceipt(
        invoice_id="0x"
        + invoice_id(invoice.hospital, invoice.bill_code, invoice.bill_number).hex(),
        record_hash="0x" + SignedFields.of(invoice).record_hash().hex(),
        leaf_index=17,
        checkpoint_size=32,
        checkpoint_tx="0x" + "cd" * 32,
        chain_id=DOMAIN.chain_id,
        contract=DOMAIN.contract,
        status="anchored",
    )
    page = render_invoice(invoice, HOSPITAL_NAME, payload_text(), receipt, "张三")[-1]
    return page, _code_box(page)


def page_image() -> Image.Image:
    """The clean last page (RGB, 1240x1754, 150 dpi) with the QR code of :func:`payload_text`."""
    return _page_and_code()[0].copy()


def code_box() -> tuple[int, int, int, int]:
    """The QR code's box on the page (left, top, right, bottom), quiet zone excluded."""
    return _page_and_code()[1]


def _code_box(page: Image.Image) -> tuple[int, int, int, int]:
    # Layout only: where the code is, read once from the clean page by zbar.
    from pyzbar.pyzbar import ZBarSymbol
    from pyzbar.pyzbar import decode as zbar_decode

    symbols = zbar_decode(page.convert("L"), symbols=[ZBarSymbol.QRCODE])
    if len(symbols) != 1 or symbols[0].data.decode("ascii") != payload_text():
        raise RuntimeError("the rendered page does not carry exactly the payload's QR code")
    left, top, width, height = symbols[0].rect
    return (left, top, left + width, top + height)


def photo_set(seed: int, count: int) -> list[Photo]:
    """``count`` photos; photo ``i`` depends only on ``seed`` and ``i``."""
    return list(_photo_set(seed, count))


@lru_cache(maxsize=4)
def _photo_set(seed: int, count: int) -> tuple[Photo, ...]:
    return tuple(make_photo(seed, index) for index in range(count))


def make_photo(seed: int, index: int) -> Photo:
    """Photo ``index`` of the set of ``seed``."""
    rng = random.Random(f"{seed}:{index}")
    severity: Severity = "severe" if index % SEVERE_EVERY == SEVERE_EVERY - 1 else "moderate"
    harsh = set(rng.sample(_HARSH, rng.choice((1, 1, 2)))) if severity == "severe" else set()
    params: dict[str, Any] = {}
    image = _frame(rng, harsh, params)
    image = _light(rng, harsh, params, image)
    image = _blur(rng, harsh, params, image)
    image = _noise(rng, harsh, params, image)
    image = _turn(rng, params, image)
    data = _jpeg(rng, harsh, params, image)
    params["harsh"] = sorted(harsh)
    return Photo(f"photo-{seed}-{index:04d}", severity, params, data, payload_text())


# The dimensions a severe photo draws from the harsher range.
_HARSH: Final = ("size", "perspective", "blur", "noise", "light", "jpeg")


@dataclass(frozen=True)
class _Frame:
    shot: str
    width: int
    height: int
    angle: float
    jitter: float
    quad: tuple[Point, ...]  # the page points seen at the photo's corners, clockwise


def _frame(rng: random.Random, harsh: set[str], params: dict[str, Any]) -> Image.Image:
    """The page as the camera frames it: the quadrilateral of the page that the photo's
    rectangle sees, mapped by a perspective transform at the phone's resolution."""
    page, box = _page_and_code()
    shot = rng.choice(("page", "page", "close-up"))
    # The citizen frames the code: it stays in the photo with its quiet zone of 4 modules
    # (1 module in a severe photo), else the frame is drawn again.
    quiet = (1 if harsh & {"perspective", "size"} else 4) * MODULE
    for _attempt in range(100):
        frame = _draw_frame(rng, harsh, page.size, box, shot)
        out = _corners(0, 0, frame.width, frame.height)
        to_photo = perspective_coefficients(frame.quad, out)
        code = [_apply(to_photo, corner) for corner in _corners(*box, margin=quiet)]
        if all(0 <= x <= frame.width and 0 <= y <= frame.height for x, y in code):
            break
    else:  # pragma: no cover - a frame is found in a few draws
        raise RuntimeError("no frame keeps the code in the photo")
    desk = rng.randint(40, 140)
    photo = page.convert("L").transform(
        (frame.width, frame.height),
        Image.Transform.PERSPECTIVE,
        perspective_coefficients(out, frame.quad),
        Image.Resampling.BILINEAR,
        fillcolor=desk,
    )
    params.update(shot=shot, width=frame.width, height=frame.height, angle=frame.angle)
    params.update(jitter=frame.jitter, desk=desk)
    return photo


def _draw_frame(
    rng: random.Random,
    harsh: set[str],
    page: tuple[int, int],
    box: tuple[int, int, int, int],
    shot: str,
) -> _Frame:
    left, top, right, bottom = box
    code = right - left
    if shot == "page":  # the whole page and some of the desk around it
        margin = rng.uniform(0.03, 0.12)
        cx, cy = page[0] / 2, page[1] / 2
        half_w, half_h = page[0] * (0.5 + margin), page[1] * (0.5 + margin)
        width = round(rng.uniform(700, 1000) if "size" in harsh else rng.uniform(1000, 2000))
    else:  # the code with the receipt printed beside it
        extent = rng.uniform(1.4, 3.0)
        half_w = code * extent / 2
        half_h = half_w * rng.uniform(1.0, 1.4)
        cx = (left + right) / 2 - rng.uniform(0.0, half_w - code / 2)
        cy = (top + bottom) / 2 + rng.uniform(-1.0, 1.0) * (half_h - code / 2)
        # A close-up is taken from nearer: the code spans a few hundred pixels or more.
        scale = rng.uniform(0.55, 0.8) if "size" in harsh else rng.uniform(0.8, 2.5)
        width = round(2 * half_w * scale)
    height = round(width * half_h / half_w)
    angle = rng.uniform(-25, 25) if "perspective" in harsh else rng.uniform(-12, 12)
    jitter = rng.uniform(0.08, 0.14) if "perspective" in harsh else rng.uniform(0.0, 0.06)
    cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    size = max(half_w, half_h) * 2
    quad = tuple(
        (
            cx + x * cos - y * sin + rng.uniform(-jitter, jitter) * size,
            cy + x * sin + y * cos + rng.uniform(-jitter, jitter) * size,
        )
        for x, y in _corners(-half_w, -half_h, half_w, half_h)
    )
    return _Frame(shot, width, height, round(angle, 1), round(jitter, 3), quad)


def _corners(
    left: float, top: float, right: float, bottom: float, margin: float = 0.0
) -> list[Point]:
    """The corners of a box grown by ``margin``, clockwise from the top left."""
    left, top, right, bottom = left - margin, top - margin, right + margin, bottom + margin
    return [(left, top), (right, top), (right, bottom), (left, bottom)]


def _apply(coefficients: Sequence[float], point: Point) -> Point:
    a, b, c, d, e, f, g, h = coefficients
    x, y = point
    w = g * x + h * y + 1
    return ((a * x + b * y + c) / w, (d * x + e * y + f) / w)


def _light(
    rng: random.Random, harsh: set[str], params: dict[str, Any], image: Image.Image
) -> Image.Image:
    """Exposure and contrast as a linear map of the gray levels, and sometimes a shadow."""
    kind = rng.choice(("normal", "dim", "bright", "flat", "shadow"))
    if "light" in harsh and kind == "normal":
        kind = rng.choice(("dim", "bright", "flat", "shadow"))
    severe = "light" in harsh
    gain, offset = 1.0, 0.0
    if kind == "dim":
        gain = rng.uniform(0.25, 0.4) if severe else rng.uniform(0.45, 0.85)
    elif kind == "bright":  # over-exposed: the paper clips, the ink turns grey
        offset = rng.uniform(110, 150) if severe else rng.uniform(30, 90)
        gain = 1.3
    elif kind == "flat":  # low contrast around mid grey
        gain = rng.uniform(0.3, 0.4) if severe else rng.uniform(0.45, 0.8)
        offset = (1 - gain) * 128
    params.update(light=kind, gain=round(gain, 2), offset=round(offset, 1))
    lut = [min(255, max(0, round(v * gain + offset))) for v in range(256)]
    image = image.point(lut)
    if kind == "shadow":  # a hand or phone shadow: light falls off across the frame
        depth = rng.uniform(0.7, 0.85) if severe else rng.uniform(0.3, 0.6)
        ramp = Image.linear_gradient("L").rotate(rng.uniform(0, 360), fillcolor=255)
        ramp = ramp.resize(image.size, Image.Resampling.BILINEAR)
        ramp = ramp.point([round(255 - depth * (255 - v)) for v in range(256)])
        image = ImageChops.multiply(image, ramp)
        params["shadow"] = round(depth, 2)
    return image


def _blur(
    rng: random.Random, harsh: set[str], params: dict[str, Any], image: Image.Image
) -> Image.Image:
    if "blur" in harsh:
        radius = rng.uniform(1.5, 2.2)
    elif rng.random() < 0.6:
        radius = rng.uniform(0.5, 1.2)
    else:
        return image
    params["blur"] = round(radius, 2)
    return image.filter(ImageFilter.GaussianBlur(radius))


def _noise(
    rng: random.Random, harsh: set[str], params: dict[str, Any], image: Image.Image
) -> Image.Image:
    """Sensor noise: the sum of two uniform draws, close to Gaussian, of ``amplitude`` each."""
    if "noise" in harsh:
        amplitude = rng.randint(35, 55)
    elif rng.random() < 0.6:
        amplitude = rng.randint(8, 25)
    else:
        return image
    params["noise"] = amplitude
    scaled = [v * amplitude // 255 for v in range(256)]
    one = Image.frombytes("L", image.size, rng.randbytes(image.width * image.height))
    two = Image.frombytes("L", image.size, rng.randbytes(image.width * image.height))
    noise = ImageChops.add(one.point(scaled), two.point(scaled))  # 0 .. 2 * amplitude
    return ImageChops.add(image, noise, 1.0, -amplitude)


def _turn(rng: random.Random, params: dict[str, Any], image: Image.Image) -> Image.Image:
    """The phone held sideways or upside down, without an EXIF orientation tag."""
    turn = rng.choice((0, 0, 0, 0, 0, 0, 0, 90, 180, 270))
    params["turn"] = turn
    if turn == 0:
        return image
    return image.rotate(turn, expand=True)


def _jpeg(rng: random.Random, harsh: set[str], params: dict[str, Any], image: Image.Image) -> bytes:
    """The photo as the phone saves it: colour (a warm or cool cast), JPEG 4:2:0."""
    quality = rng.randint(30, 45) if "jpeg" in harsh else rng.randint(50, 90)
    cast = [rng.uniform(0.9, 1.0) for _ in range(3)]
    color = Image.merge("RGB", [image.point([round(v * c) for v in range(256)]) for c in cast])
    out = io.BytesIO()
    color.save(out, "JPEG", quality=quality)
    params["quality"] = quality
    return out.getvalue()


def perspective_coefficients(out: Sequence[Point], src: Sequence[Point]) -> tuple[float, ...]:
    """The eight coefficients of ``Image.transform(..., PERSPECTIVE, ...)`` that map each output
    corner ``out[i]`` to the source point ``src[i]``.

    For output (x, y) Pillow samples the source at ((a x + b y + c) / (g x + h y + 1),
    (d x + e y + f) / (g x + h y + 1)); each corner gives two equations linear in a..h.
    """
    rows: list[list[float]] = []
    for (x, y), (u, v) in zip(out, src, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -x * u, -y * u, u])
        rows.append([0, 0, 0, x, y, 1, -x * v, -y * v, v])
    return tuple(_solve(rows))


def _solve(rows: list[list[float]]) -> list[float]:
    """Gauss-Jordan elimination with partial pivoting on an augmented n x (n+1) matrix."""
    n = len(rows)
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(rows[r][col]))
        if abs(rows[pivot][col]) < 1e-12:
            raise ValueError("degenerate quadrilateral")
        rows[col], rows[pivot] = rows[pivot], rows[col]
        lead = rows[col][col]
        rows[col] = [value / lead for value in rows[col]]
        for r in range(n):
            if r != col and rows[r][col] != 0.0:
                factor = rows[r][col]
                rows[r] = [a - factor * b for a, b in zip(rows[r], rows[col], strict=True)]
    return [row[n] for row in rows]
