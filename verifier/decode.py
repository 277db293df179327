"""Reading the QR code from a citizen's photo of an invoice: two engines, one ladder.

Two QR engines sit behind one small interface, :class:`QrDecoder`: ZXing-C++ (``zxingcpp``) and
ZBar (``pyzbar``). :class:`PhotoDecoder` opens the photo's bytes, applies the EXIF orientation,
and tries each engine in order over a ladder of preprocessed variants of the photo
(:func:`preprocess_variants`), stopping at the first variant from which an engine reads a code.

The order is measured by ``bench/decode.py`` on ``tests/verifier/photos.py``'s phone photos of a
printed invoice (300 photos, one in four severe; a machine of 2 cores):

* ZXing first. Over the ladder it reads 100% of moderate photos and 85.3% of severe ones, in
  6.9 ms median per photo from the JPEG bytes; ZBar reads 99.1% and 77.3% in 49.1 ms. On the
  clean A4 page at 150 dpi: ZXing 2.6 ms, ZBar 23.3 ms.
* ZBar second, over the same ladder, as a fallback: a different detector and binariser. On
  1,100 photos it read one (severe) photo that ZXing missed on every rung.
* The ladder after the grayscale photo, ordered by how many photos each step read after the
  steps before it failed. On 1,100 photos ZXing missed 55 on the grayscale photo (2 moderate,
  53 severe); the unsharp mask then read 12, the light blur (against sensor noise) 3, the
  upscale 1 and gamma 0.5 (dim light) 1. The Otsu threshold, the contrast stretch and the 2x
  downscale read none after those (the threshold 3 on its own): they stay last, cheap rungs
  for what the set does not cover.

An unreadable photo costs every rung of both engines: 0.3 to 0.7 s for a 2 to 6 Mpx photo.

What a photo may cost is checked from its header, before a pixel is decoded
(:class:`ImageLimits`): at most ``MAX_PIXELS`` pixels, ``MAX_SIDE`` pixels a side, and
``MAX_DECODED_BYTES`` once decoded. The last counts what Pillow allocates: 1 byte a pixel for
grayscale and palette images, 4 for colour (RGB is stored as RGBX); a JPEG is counted at the
scale and in the grayscale libjpeg decodes it to. A 38 KB PNG can claim 39,000,000 x 1 pixels
or 6,324 x 6,324 RGBA: both decoded cost 0.8 GB (the resampling of the first alone 0.6 GB);
both are refused from the header. The largest images accepted cost about 100 MB at the peak.

Decoding reads a code; it does not verify it. The caller parses the text
(``verifier.qr.decode_payload``) and checks the signature and the trust list.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple, Protocol, cast

from PIL import Image, ImageFilter, ImageOps

from verifier.qr import QrImageUnreadable

MAX_PIXELS: Final = 40_000_000  # refused above: a 48 Mpx phone photo is 8064x6048 = 48.8 Mpx
MAX_SIDE: Final = 16_384  # WebP's own limit; a 40 Mpx photo is 7,300 wide, a panorama 16,000
# What the decoded image may take: a 12 Mpx RGBA PNG (4 bytes a pixel); a JPEG decodes smaller.
MAX_DECODED_BYTES: Final = 48 * 1024 * 1024
WORK_PIXELS: Final = 6_000_000  # photos are reduced to this before decoding (12 Mpx JPEG: 3 Mpx)
ACCEPTED_FORMATS: Final = ("JPEG", "PNG", "WEBP")  # phones and screenshots (MPO opens as JPEG)
_MIN_SIDE: Final = 21  # the smallest QR code is 21 modules square


class ImageTooLarge(QrImageUnreadable):
    """Raised when an image has more pixels than the decoder accepts, before it is decoded;
    ``pixels`` is None when Pillow refused it first (a decompression bomb)."""

    code = "image_too_many_pixels"

    def __init__(self, pixels: int | None, limit: int, reason: str | None = None) -> None:
        self.pixels = pixels
        self.limit = limit
        size = "more than Pillow's limit" if pixels is None else f"{pixels:,}"
        super().__init__(reason or f"the image has {size} pixels, at most {limit:,} are accepted")

    def details(self) -> dict[str, int | None]:
        """The numbers of the refusal, for an error body."""
        return {"pixels": self.pixels, "limit": self.limit}


class ImageSideTooLong(ImageTooLarge):
    """Raised when an image is wider or taller than the decoder accepts, before it is decoded
    (a strip of 39,000,000 x 1 pixels has few pixels but costs a resampling table per column)."""

    code = "image_side_too_long"

    def __init__(self, width: int, height: int, limit: int) -> None:
        self.width = width
        self.height = height
        super().__init__(
            width * height,
            limit,
            f"the image is {width:,} x {height:,} pixels, at most {limit:,} a side are accepted",
        )

    def details(self) -> dict[str, int | None]:
        return {"width": self.width, "height": self.height, "limit": self.limit}


class ImageDecodesTooLarge(ImageTooLarge):
    """Raised when an image would take more memory decoded than the decoder accepts, before it
    is decoded (a colour PNG is stored at 4 bytes a pixel)."""

    code = "image_too_many_bytes"

    def __init__(self, pixels: int, decoded_bytes: int, limit: int) -> None:
        self.decoded_bytes = decoded_bytes
        super().__init__(
            pixels,
            limit,
            f"the image would take {decoded_bytes:,} bytes decoded, at most {limit:,} are"
            " accepted: send a JPEG or a smaller image",
        )

    def details(self) -> dict[str, int | None]:
        return {"pixels": self.pixels, "decoded_bytes": self.decoded_bytes, "limit": self.limit}


@dataclass(frozen=True)
class ImageLimits:
    """How large a photo may be, checked from its header before any pixel is decoded."""

    pixels: int = MAX_PIXELS
    side: int = MAX_SIDE
    decoded_bytes: int = MAX_DECODED_BYTES

    def check_size(self, width: int, height: int) -> None:
        """Raises ``ImageSideTooLong`` or ``ImageTooLarge`` for an image of this size."""
        if max(width, height) > self.side:
            raise ImageSideTooLong(width, height, self.side)
        if width * height > self.pixels:
            raise ImageTooLarge(width * height, self.pixels)

    def check(self, image: Image.Image) -> None:
        """Raises as :meth:`check_size`, or ``ImageDecodesTooLarge``, for an image opened but
        not loaded (its size and mode are the header's, or a JPEG's draft's)."""
        width, height = image.size
        self.check_size(width, height)
        pixels = width * height
        decoded = pixels * _bytes_per_pixel(image.mode)
        if decoded > self.decoded_bytes:
            raise ImageDecodesTooLarge(pixels, decoded, self.decoded_bytes)


def _bytes_per_pixel(mode: str) -> int:
    """What Pillow stores a pixel of ``mode`` in: one byte for one 8-bit band, two for 16-bit
    gray, four for the rest (several bands are padded to four bytes, and 32-bit ints)."""
    if mode in ("1", "L", "P"):
        return 1
    if mode.startswith("I;16"):
        return 2
    return 4


def open_photo(data: bytes, limits: ImageLimits = ImageLimits()) -> tuple[str, tuple[int, int]]:
    """The format and size of a photo, from its header only, checked against ``limits``.

    Raises as :meth:`PhotoDecoder.decode_bytes`; decodes no pixel, so a route may refuse a
    photo before queueing it for decoding.
    """
    try:
        with Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS) as image:
            limits.check(image)
            return str(image.format), image.size
    except QrImageUnreadable:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLarge(None, limits.pixels) from None
    except Exception as exc:  # Pillow's plugins raise many types on bad bytes
        raise QrImageUnreadable(f"{type(exc).__name__}: {exc}") from None


class QrDecoder(Protocol):
    """A QR engine: the texts of every QR code it reads in an image, in its order.

    ``decode`` raises nothing for any image; an image without a readable code gives ``[]``.
    """

    name: str

    def decode(self, image: Image.Image) -> list[str]: ...


class ZxingDecoder:
    """ZXing-C++ restricted to QR codes; ``try_invert`` (light on dark) is off: invoices are
    printed dark on light, and it costs a third more time."""

    name = "zxing"

    def __init__(
        self, *, try_rotate: bool = True, try_downscale: bool = True, try_invert: bool = False
    ) -> None:
        import zxingcpp

        self._zxing = zxingcpp
        # Plain Python values only: a zxingcpp object held until exit is reported as a leak.
        self._options = {
            "try_rotate": try_rotate,
            "try_downscale": try_downscale,
            "try_invert": try_invert,
        }

    def decode(self, image: Image.Image) -> list[str]:
        """The texts of the valid QR codes ZXing reads in ``image``."""
        gray = _gray(image)
        if min(gray.size) < _MIN_SIDE:
            return []
        zxing = self._zxing
        barcodes = zxing.read_barcodes(
            gray,
            formats=zxing.BarcodeFormats(zxing.BarcodeFormat.QRCode),
            text_mode=zxing.TextMode.Plain,
            **self._options,
        )
        return [barcode.text for barcode in barcodes if barcode.valid]


class PyzbarDecoder:
    """ZBar restricted to QR codes; its bytes are read as UTF-8, else as Latin-1."""

    name = "pyzbar"

    def __init__(self) -> None:
        from pyzbar import pyzbar

        self._decode: Callable[..., list[Any]] = pyzbar.decode
        self._symbols = [pyzbar.ZBarSymbol.QRCODE]

    def decode(self, image: Image.Image) -> list[str]:
        """The texts of the QR codes ZBar reads in ``image``."""
        gray = _gray(image)
        if min(gray.size) < _MIN_SIDE:
            return []
        texts = []
        for symbol in self._decode(gray, symbols=self._symbols):
            data: bytes = symbol.data
            try:
                texts.append(data.decode("utf-8"))
            except UnicodeDecodeError:
                texts.append(data.decode("latin-1"))
        return texts


class Variant(NamedTuple):
    """One rung of the preprocessing ladder: its name and the grayscale image."""

    name: str
    image: Image.Image


def preprocess_variants(image: Image.Image) -> Iterator[Variant]:
    """The ladder: the grayscale image, then variants of it, each computed only when asked for.

    Every variant is derived from the grayscale image, not from the variant before it. A step
    that does not apply (an upscale past ``WORK_PIXELS``) is skipped.
    """
    gray = _gray(image)
    yield Variant("gray", gray)
    for name, step in LADDER:
        variant = step(gray)
        if variant is not None:
            yield Variant(name, variant)


@dataclass(frozen=True)
class DecodeResult:
    """What :class:`PhotoDecoder` read: the texts (deduplicated, in reading order, empty when no
    code was read), which engine and variant read them, and the time taken."""

    texts: tuple[str, ...]
    engine: str | None
    variant: str | None
    attempts: int  # engine runs, one per (engine, variant) tried
    milliseconds: float


class PhotoDecoder:
    """Reads the QR code of a photo: every engine over the ladder, until one reads a code.

    Stateless once built, so one instance may serve every thread.
    """

    def __init__(
        self,
        engines: Sequence[QrDecoder] | None = None,
        *,
        limits: ImageLimits | None = None,
        work_pixels: int = WORK_PIXELS,
    ) -> None:
        self.engines: tuple[QrDecoder, ...] = (
            tuple(engines) if engines is not None else (ZxingDecoder(), PyzbarDecoder())
        )
        if not self.engines:
            raise ValueError("a PhotoDecoder needs at least one engine")
        self.limits = limits or ImageLimits()
        self.work_pixels = work_pixels

    def decode_bytes(self, data: bytes) -> DecodeResult:
        """The QR codes of a photo given as PNG, JPEG or WebP bytes.

        Raises ``ImageTooLarge`` (or a subclass) for an image over ``limits`` (checked from the
        header, before decoding) and ``verifier.qr.QrImageUnreadable`` for any bytes Pillow
        cannot open and decode as one of ``ACCEPTED_FORMATS``; no other exception. The caller
        still parses and verifies each text.
        """
        start = time.perf_counter()
        gray = self.load(data)
        return self._decode(gray, start)

    def decode_image(self, image: Image.Image) -> DecodeResult:
        """The QR codes of an image already in memory (no EXIF orientation is applied)."""
        start = time.perf_counter()
        return self._decode(_reduce(_gray(image), self.work_pixels), start)

    def load(self, data: bytes) -> Image.Image:
        """The photo as the grayscale image that is decoded: upright by its EXIF orientation,
        transparent pixels on white, reduced to ``work_pixels`` at most. Raises as
        :meth:`decode_bytes`."""
        limits = self.limits
        try:
            with Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS) as image:
                width, height = image.size
                limits.check_size(width, height)  # the header's size, before draft() shrinks it
                if image.format in ("JPEG", "MPO"):
                    # libjpeg decodes straight to grayscale and, for a photo over work_pixels,
                    # at 1/2, 1/4 or 1/8 scale: the smallest that keeps a quarter of work_pixels
                    # (a 12 Mpx photo is decoded at 1/2, 3 Mpx).
                    ratio = 1.0
                    if width * height > self.work_pixels:
                        ratio = math.sqrt(self.work_pixels / (width * height)) / 2
                    image.draft("L", (math.ceil(width * ratio), math.ceil(height * ratio)))
                limits.check(image)  # what load() allocates: the drafted size and mode
                image.load()
                ImageOps.exif_transpose(image, in_place=True)  # a copy would double the cost
                gray = _reduce(_gray(image), self.work_pixels)
        except QrImageUnreadable:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            # Pillow refuses (or, with warnings as errors, warns of) huge images in open().
            raise ImageTooLarge(None, limits.pixels) from None
        except Exception as exc:  # Pillow's plugins raise many types on bad bytes
            raise QrImageUnreadable(f"{type(exc).__name__}: {exc}") from None
        if min(gray.size) < 1:
            raise QrImageUnreadable(f"the image is {gray.width}x{gray.height} pixels")
        return gray

    def _decode(self, gray: Image.Image, start: float) -> DecodeResult:
        variants = preprocess_variants(gray)
        seen: list[Variant] = []  # the ladder, computed once and shared by the engines
        attempts = 0
        for engine in self.engines:
            for index in range(len(LADDER) + 1):
                if index == len(seen):
                    variant = next(variants, None)
                    if variant is None:
                        break
                    seen.append(variant)
                name, image = seen[index]
                attempts += 1
                texts = engine.decode(image)
                if texts:
                    return DecodeResult(
                        tuple(dict.fromkeys(texts)), engine.name, name, attempts, _ms(start)
                    )
        return DecodeResult((), None, None, attempts, _ms(start))


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def _gray(image: Image.Image) -> Image.Image:
    """``image`` in 8-bit grayscale, transparent pixels on white (a transparent PNG of a code
    is black on nothing; its transparent pixels are black in RGB)."""
    if image.mode == "L":
        return image
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    ):
        # Composited in grayscale, one byte a pixel: an RGBA copy and an RGBA white page
        # would take four each.
        rgba = image if image.mode in ("RGBA", "LA") else image.convert("RGBA")
        white = Image.new("L", rgba.size, 255)
        return Image.composite(rgba.convert("L"), white, rgba.getchannel("A"))
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        # Wide samples: stretch their range to 8 bits rather than clip it.
        wide = image.convert("F")
        low, high = cast(tuple[float, float], wide.getextrema())  # one band: (min, max)
        scale = 255 / (high - low) if high > low else 0.0
        return wide.point(lambda v: (v - low) * scale).convert("L")
    try:
        return image.convert("L")
    except ValueError:  # modes without a direct conversion (HSV)
        return image.convert("RGB").convert("L")


def _reduce(gray: Image.Image, work_pixels: int) -> Image.Image:
    pixels = gray.width * gray.height
    if pixels <= work_pixels:
        return gray
    ratio = math.sqrt(work_pixels / pixels)
    size = (max(1, int(gray.width * ratio)), max(1, int(gray.height * ratio)))
    return gray.resize(size, Image.Resampling.BOX)


# The ladder's steps after the grayscale image. Each returns None when it does not apply.
def _sharpen(gray: Image.Image) -> Image.Image:
    return gray.filter(ImageFilter.UnsharpMask(radius=2, percent=150, threshold=0))


def _denoise(gray: Image.Image) -> Image.Image:
    return gray.filter(ImageFilter.GaussianBlur(1))


_BRIGHTEN: Final = [round(255 * (v / 255) ** 0.5) for v in range(256)]


def _gamma(gray: Image.Image) -> Image.Image:
    return gray.point(_BRIGHTEN)


def _upscale(gray: Image.Image) -> Image.Image | None:
    factor = 2.0 if max(gray.size) < 800 else 1.5
    size = (round(gray.width * factor), round(gray.height * factor))
    if size[0] * size[1] > WORK_PIXELS:
        return None
    return gray.resize(size, Image.Resampling.BICUBIC)


def _threshold(gray: Image.Image) -> Image.Image:
    cut = otsu_threshold(gray.histogram())
    return gray.point([255 if v > cut else 0 for v in range(256)])


def _contrast(gray: Image.Image) -> Image.Image:
    return ImageOps.autocontrast(gray, cutoff=1)


def _downscale(gray: Image.Image) -> Image.Image | None:
    if min(gray.size) < 2 * _MIN_SIDE:
        return None
    return gray.reduce(2)


LADDER: Final[tuple[tuple[str, Callable[[Image.Image], Image.Image | None]], ...]] = (
    ("sharpen", _sharpen),
    ("denoise", _denoise),
    ("gamma", _gamma),
    ("upscale", _upscale),
    ("threshold", _threshold),
    ("contrast", _contrast),
    ("downscale", _downscale),
)


def otsu_threshold(histogram: Sequence[int]) -> int:
    """The gray level that best splits a 256-bin histogram in two classes (Otsu, 1979): the
    level maximising the between-class variance; pixels above it are light."""
    total = sum(histogram)
    total_sum = sum(level * count for level, count in enumerate(histogram))
    weight_dark = 0
    sum_dark = 0
    best_level, best_variance = 127, -1.0
    for level, count in enumerate(histogram[:256]):
        weight_dark += count
        sum_dark += level * count
        weight_light = total - weight_dark
        if weight_dark == 0 or weight_light == 0:
            continue
        mean_dark = sum_dark / weight_dark
        mean_light = (total_sum - sum_dark) / weight_light
        variance = weight_dark * weight_light * (mean_dark - mean_light) ** 2
        if variance > best_variance:
            best_level, best_variance = level, variance
    return best_level
