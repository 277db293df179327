"""The photo decoder (verifier/decode.py): both engines, the ladder, phone photos, bad bytes."""

from __future__ import annotations

import io
import random
import struct
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from tests.verifier.photos import Photo, page_image, payload_text, photo_set
from verifier.decode import (
    LADDER,
    MAX_DECODED_BYTES,
    MAX_PIXELS,
    MAX_SIDE,
    DecodeResult,
    ImageDecodesTooLarge,
    ImageLimits,
    ImageSideTooLong,
    ImageTooLarge,
    PhotoDecoder,
    PyzbarDecoder,
    QrDecoder,
    ZxingDecoder,
    open_photo,
    otsu_threshold,
    preprocess_variants,
)
from verifier.qr import QrError, QrImageUnreadable, decode_payload, qr_png

SEED = 7
PHOTOS = 200  # 150 moderate, 50 severe; about 10 s to draw, 3 s to decode
# Measured with the combined decoder on sets of 200 (seeds 1, 2, 3, 7) and of 300 (seed 2025,
# bench/decode.py): moderate 100% on every set; severe 88%, 92%, 92%, 96% and 87%. The floor
# below is a sanity check far under what was measured, not a target.
SEVERE_FLOOR = 0.75
EXIF_ORIENTATION = 0x0112


@pytest.fixture(scope="module")
def decoder() -> PhotoDecoder:
    return PhotoDecoder()


@pytest.fixture(scope="module")
def photos() -> list[Photo]:
    return photo_set(SEED, PHOTOS)


@pytest.fixture(scope="module")
def results(decoder: PhotoDecoder, photos: list[Photo]) -> list[DecodeResult]:
    return [decoder.decode_bytes(photo.data) for photo in photos]


def _code_image(scale: int = 4) -> Image.Image:
    with Image.open(io.BytesIO(qr_png(payload_text(), scale=scale))) as image:
        return image.convert("L")


def _encode(image: Image.Image, kind: str = "PNG", **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, kind, **options)
    return out.getvalue()


def _png_header(width: int, height: int, color_type: int = 0) -> bytes:
    """A PNG of one IHDR chunk claiming ``width`` x ``height`` (gray, or ``color_type`` 2 RGB,
    6 RGBA) and no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
        + b"\x00\x00\x00\x00IEND\xaeB`\x82"
    )


# Engines


@pytest.mark.parametrize("engine", [ZxingDecoder(), PyzbarDecoder()], ids=lambda e: e.name)
def test_each_engine_reads_a_clean_code_and_the_clean_page(engine: QrDecoder) -> None:
    assert engine.decode(_code_image()) == [payload_text()]
    assert engine.decode(page_image()) == [payload_text()]
    assert engine.decode(Image.new("L", (400, 400), 255)) == []
    assert engine.decode(Image.new("L", (5, 5), 0)) == []


def test_engines_read_every_image_mode() -> None:
    code = _code_image()
    transparent = Image.new("RGBA", code.size, (0, 0, 0, 0))
    transparent.putalpha(code.point(lambda v: 255 - v))  # black modules on nothing
    wide = code.convert("I").point(lambda v: v * 200 + 1000).convert("I;16")  # 16-bit samples
    images = {
        "RGB": code.convert("RGB"),
        "1": code.convert("1"),
        "P": code.convert("P"),
        "CMYK": code.convert("CMYK"),
        "RGBA transparent": transparent,
        "I;16": wide,
        "F": code.convert("F"),
    }
    for engine in (ZxingDecoder(), PyzbarDecoder()):
        for mode, image in images.items():
            assert engine.decode(image) == [payload_text()], (engine.name, mode)


# The ladder


def test_ladder_starts_with_the_grayscale_image_and_runs_in_order() -> None:
    variants = list(preprocess_variants(page_image()))
    assert [v.name for v in variants] == ["gray", *(name for name, _ in LADDER)]
    assert all(v.image.mode == "L" for v in variants)
    assert variants[0].image.size == page_image().size


def test_ladder_skips_an_upscale_past_the_working_size() -> None:
    big = Image.new("L", (2000, 2800), 255)
    assert "upscale" not in [v.name for v in preprocess_variants(big)]


def test_ladder_is_lazy() -> None:
    first = next(preprocess_variants(Image.new("RGB", (10_000, 5_000), "white")))
    assert first.name == "gray"  # no sharpened 50 Mpx image was computed to get here


@pytest.mark.parametrize(
    ("histogram", "low", "high"),
    [
        ({20: 100, 220: 100}, 20, 219),  # two classes: any cut between them, the first kept
        ({10: 50, 60: 50, 200: 400, 240: 100}, 60, 199),
        ({128: 1}, 127, 127),  # one level: nothing to split, the default
        ({}, 127, 127),
    ],
)
def test_otsu_threshold_splits_two_classes(histogram: dict[int, int], low: int, high: int) -> None:
    counts = [histogram.get(level, 0) for level in range(256)]
    assert low <= otsu_threshold(counts) <= high


# The photo decoder


def test_photo_decoder_reads_clean_pages(decoder: PhotoDecoder) -> None:
    page = page_image()
    for data in (_encode(page), _encode(page, "JPEG", quality=85), _encode(page, "WEBP")):
        result = decoder.decode_bytes(data)
        assert result.texts == (payload_text(),)
        assert (result.engine, result.variant, result.attempts) == ("zxing", "gray", 1)
        assert result.milliseconds > 0
    assert decoder.decode_image(page).texts == (payload_text(),)


def test_decoded_text_is_the_signed_payload(decoder: PhotoDecoder) -> None:
    (text,) = decoder.decode_bytes(_encode(page_image())).texts
    assert text == payload_text()
    assert decode_payload(text).signer()  # a real signature: the text is exact to the bit


def test_page_without_a_code_tries_the_whole_ladder(decoder: PhotoDecoder) -> None:
    blank = Image.new("RGB", (1240, 1754), "white")
    rungs = len(list(preprocess_variants(blank)))
    result = decoder.decode_bytes(_encode(blank, "JPEG"))
    assert result == DecodeResult((), None, None, 2 * rungs, result.milliseconds)


def test_two_codes_are_read_once_each_in_order(decoder: PhotoDecoder) -> None:
    code = _code_image()
    with Image.open(io.BytesIO(qr_png("ZC1:OTHER", scale=6))) as other:
        sheet = Image.new("L", (code.width * 3, code.height + 40), 255)
        sheet.paste(code, (0, 20))
        sheet.paste(other.convert("L"), (code.width * 2, 20))
    texts = decoder.decode_bytes(_encode(sheet)).texts
    assert sorted(texts) == sorted({payload_text(), "ZC1:OTHER"})


def test_photo_decoder_needs_an_engine() -> None:
    with pytest.raises(ValueError, match="at least one engine"):
        PhotoDecoder([])


# Phone photos


def test_moderate_photos_are_read(
    photos: list[Photo], results: list[DecodeResult], capsys: pytest.CaptureFixture[str]
) -> None:
    pairs = [(p, r) for p, r in zip(photos, results, strict=True) if p.severity == "moderate"]
    read = [r.texts == (p.text,) for p, r in pairs]
    rate = sum(read) / len(read)
    with capsys.disabled():
        print(f"\nmoderate photos read: {sum(read)}/{len(read)} = {rate:.1%}")
    missed = [p.name for (p, _), ok in zip(pairs, read, strict=True) if not ok]
    assert rate >= 0.99, f"missed: {missed}"


def test_severe_photos_are_reported(
    photos: list[Photo], results: list[DecodeResult], capsys: pytest.CaptureFixture[str]
) -> None:
    pairs = [(p, r) for p, r in zip(photos, results, strict=True) if p.severity == "severe"]
    read = sum(r.texts == (p.text,) for p, r in pairs)
    rate = read / len(pairs)
    with capsys.disabled():
        print(f"\nsevere photos read: {read}/{len(pairs)} = {rate:.1%}")
        for photo, result in pairs:
            if result.texts != (photo.text,):
                print(f"  unread {photo.name}: {photo.params}")
    assert rate >= SEVERE_FLOOR


def test_no_photo_is_misread(photos: list[Photo], results: list[DecodeResult]) -> None:
    # A photo gives its exact payload or nothing: never another text.
    assert all(r.texts in ((), (p.text,)) for p, r in zip(photos, results, strict=True))


@pytest.mark.parametrize(
    ("orientation", "stored"),
    [
        (3, Image.Transpose.ROTATE_180),
        (6, Image.Transpose.ROTATE_90),  # a phone held upright: pixels stored sideways
        (8, Image.Transpose.ROTATE_270),
        (5, Image.Transpose.TRANSPOSE),  # mirrored: only undone by honouring the tag
    ],
)
def test_exif_rotated_jpeg_is_read_upright(
    decoder: PhotoDecoder, photos: list[Photo], orientation: int, stored: Image.Transpose
) -> None:
    upright = next(p for p in photos if p.severity == "moderate" and p.params["turn"] == 0)
    image = upright.image()
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    data = _encode(image.transpose(stored), "JPEG", quality=90, exif=exif)
    assert decoder.load(data).size == image.size
    assert decoder.decode_bytes(data).texts == (payload_text(),)


def test_huge_phone_photo_is_reduced_before_decoding(decoder: PhotoDecoder) -> None:
    photo = page_image().resize((3024, 4276), Image.Resampling.BICUBIC)  # 12.9 Mpx
    data = _encode(photo, "JPEG", quality=90)
    gray = decoder.load(data)
    assert gray.mode == "L" and gray.width * gray.height <= decoder.work_pixels
    assert decoder.decode_bytes(data).texts == (payload_text(),)


# Bad bytes


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "cannot identify"),
        (b"not an image", "cannot identify"),
        (b"%PDF-1.7\n" + bytes(100), "cannot identify"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"/>', "cannot identify"),
        (b"GIF89a" + bytes(100), "cannot identify"),  # not an accepted format
        (_png_header(100, 100), "."),  # a header and no pixels
        (b"\xff\xd8\xff\xe0" + bytes(50), "."),  # a JPEG start and nothing after
    ],
)
def test_unreadable_bytes_are_refused(decoder: PhotoDecoder, data: bytes, match: str) -> None:
    with pytest.raises(QrImageUnreadable, match=match) as refused:
        decoder.decode_bytes(data)
    assert not isinstance(refused.value, ImageTooLarge)


def test_truncated_photo_is_refused(decoder: PhotoDecoder, photos: list[Photo]) -> None:
    with pytest.raises(QrImageUnreadable, match=r"truncated|broken|EOF"):
        decoder.decode_bytes(photos[0].data[: len(photos[0].data) // 2])


def test_huge_dimensions_are_refused_before_decoding(decoder: PhotoDecoder) -> None:
    with pytest.raises(ImageTooLarge, match="48,000,000 pixels") as refused:
        decoder.decode_bytes(_png_header(8000, 6000))
    assert (refused.value.pixels, refused.value.limit) == (48_000_000, MAX_PIXELS)
    with pytest.raises(ImageTooLarge) as bomb:  # Pillow itself refuses this one in open()
        decoder.decode_bytes(_png_header(100_000, 100_000))
    assert bomb.value.pixels is None
    assert isinstance(bomb.value, QrImageUnreadable) and isinstance(bomb.value, QrError)


def blank_png(width: int, height: int, color_type: int = 0) -> bytes:
    """A whole PNG of ``width`` x ``height`` black pixels: rows of zeros compress to almost
    nothing (39,000,000 x 1 gray is 38 KB)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    bands = {0: 1, 2: 3, 6: 4}[color_type]
    row = bytes(1 + width * bands)  # filter byte 0, then the samples
    packer = zlib.compressobj(9)
    pixels = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("width", "height"),
    [(39_000_000, 1), (1, 39_000_000), (MAX_SIDE + 1, 2), (1000, MAX_SIDE + 1)],
)
def test_an_image_too_wide_or_tall_is_refused_from_its_header(
    decoder: PhotoDecoder, width: int, height: int
) -> None:
    # The 39,000,000 x 1 strip has fewer pixels than MAX_PIXELS but cost 0.8 GB decoded (the
    # resampling alone 0.6 GB); the whole file is 38 KB.
    data = blank_png(width, height) if height <= MAX_SIDE + 1 else _png_header(width, height)
    with pytest.raises(ImageSideTooLong, match=f"at most {MAX_SIDE:,} a side") as refused:
        decoder.decode_bytes(data)
    assert refused.value.code == "image_side_too_long"
    assert refused.value.details() == {"width": width, "height": height, "limit": MAX_SIDE}
    with pytest.raises(ImageSideTooLong):
        open_photo(data)


@pytest.mark.parametrize(
    ("color_type", "side", "decoded"),
    [(6, 6324, 6324 * 6324 * 4), (2, 3700, 3700 * 3700 * 4), (6, 3700, 3700 * 3700 * 4)],
)
def test_a_colour_image_is_refused_by_what_it_takes_decoded(
    decoder: PhotoDecoder, color_type: int, side: int, decoded: int
) -> None:
    # Colour is stored at 4 bytes a pixel: a 155 KB PNG of 6,324 x 6,324 RGBA cost 0.8 GB.
    data = blank_png(side, side, color_type)
    with pytest.raises(ImageDecodesTooLarge, match="send a JPEG") as refused:
        decoder.decode_bytes(data)
    assert refused.value.code == "image_too_many_bytes"
    assert refused.value.details() == {
        "pixels": side * side,
        "decoded_bytes": decoded,
        "limit": MAX_DECODED_BYTES,
    }


def test_the_largest_images_accepted_are_decoded() -> None:
    gray_side = int(MAX_PIXELS**0.5)  # 6,324: gray is one byte a pixel, so only pixels count
    colour_side = int((MAX_DECODED_BYTES / 4) ** 0.5)  # 3,545
    decoder = PhotoDecoder([ZxingDecoder()])
    for data in (blank_png(gray_side, gray_side), blank_png(colour_side, colour_side, 6)):
        assert open_photo(data) == ("PNG", _size(data))
        assert decoder.decode_bytes(data).texts == ()


def _size(data: bytes) -> tuple[int, int]:
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_limits_are_the_decoders() -> None:
    code = _encode(_code_image())
    side = _code_image().width
    assert PhotoDecoder(limits=ImageLimits(side=side)).decode_bytes(code).texts == (payload_text(),)
    with pytest.raises(ImageSideTooLong):
        PhotoDecoder(limits=ImageLimits(side=side - 1)).decode_bytes(code)
    with pytest.raises(ImageTooLarge, match=f"at most {side * side - 1:,} are accepted"):
        PhotoDecoder(limits=ImageLimits(pixels=side * side - 1)).decode_bytes(code)
    with pytest.raises(ImageDecodesTooLarge):  # the code is gray: one byte a pixel
        PhotoDecoder(limits=ImageLimits(decoded_bytes=side * side - 1)).decode_bytes(code)


_MAGIC = st.sampled_from(
    [
        b"",
        b"\x89PNG\r\n\x1a\n",
        b"\xff\xd8\xff\xe0",
        b"\xff\xd8\xff\xe1",
        b"RIFF\x00\x01\x00\x00WEBPVP8 ",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(magic=_MAGIC, body=st.binary(max_size=4096))
def test_random_bytes_give_nothing_or_a_typed_refusal(
    decoder: PhotoDecoder, magic: bytes, body: bytes
) -> None:
    try:
        result = decoder.decode_bytes(magic + body)
    except QrImageUnreadable:
        return
    assert result.texts == ()


@pytest.fixture(scope="module")
def small_code_files() -> list[bytes]:
    code = _code_image(scale=2)
    return [_encode(code), _encode(code, "JPEG", quality=80)]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_corrupted_code_files_give_the_payload_nothing_or_a_refusal(
    decoder: PhotoDecoder, small_code_files: list[bytes], data: st.DataObject
) -> None:
    original = bytearray(data.draw(st.sampled_from(small_code_files)))
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(original) - 1))
        original[at] = data.draw(st.integers(0, 255))
    try:
        result = decoder.decode_bytes(bytes(original))
    except QrImageUnreadable:
        return
    assert result.texts in ((), (payload_text(),))


@settings(max_examples=60, deadline=None)
@given(
    width=st.integers(1, 160),
    height=st.integers(1, 160),
    mode=st.sampled_from(["L", "RGB", "RGBA", "1"]),
    seed=st.integers(0, 2**32),
    kind=st.sampled_from(["PNG", "JPEG"]),
)
def test_random_noise_images_read_nothing(
    decoder: PhotoDecoder, width: int, height: int, mode: str, seed: int, kind: str
) -> None:
    bands = len(mode) if mode != "1" else 1
    noise = random.Random(seed).randbytes(width * height * bands)
    image = Image.frombytes("L" if mode == "1" else mode, (width, height), noise)
    if mode == "1":
        image = image.convert("1")
    if kind == "JPEG" and mode == "RGBA":
        image = image.convert("RGB")
    assert decoder.decode_bytes(_encode(image, kind)).texts == ()
    assert decoder.decode_image(image).texts == ()
