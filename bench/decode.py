"""QR decoding benchmark: each engine alone and the combined photo decoder, on phone photos.

The photos are ``tests/verifier/photos.py``'s deterministic set (a rendered invoice page,
photographed in perspective, tilted, blurred, noisy, dim or over-exposed, JPEG-compressed; one
in four "severe"). For ZXing alone, ZBar alone (each over the same preprocessing ladder) and the
combined :class:`verifier.decode.PhotoDecoder` (ZXing then ZBar): the share of photos whose
decoded text equals the payload, by severity, and the time per photo from the JPEG bytes to the
text (opening, EXIF orientation, grayscale, every ladder step tried), p50 and p99 over all
photos, read or not. Also each engine alone on the clean A4 page at 150 dpi (grayscale image in
memory, no preprocessing), and the combined decoder on a 12 Mpx phone-camera JPEG.
"""

from __future__ import annotations

import io
import math
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from PIL import Image

from tests.verifier.photos import Photo, page_image, photo_set
from verifier.decode import PhotoDecoder, PyzbarDecoder, QrDecoder, ZxingDecoder

SEED = 2025
PHOTOS = 300
PAGE_RUNS = 30


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def _run_set(decoder: PhotoDecoder, photos: Sequence[Photo], key: str) -> dict[str, Any]:
    decoder.decode_bytes(photos[0].data)  # warm up: lazy imports, first allocation
    read: dict[str, list[bool]] = {"moderate": [], "severe": []}
    times: list[float] = []
    read_times: list[float] = []
    variants: Counter[str] = Counter()
    engines: Counter[str] = Counter()
    for photo in photos:
        result = decoder.decode_bytes(photo.data)
        ok = result.texts == (photo.text,)
        read[photo.severity].append(ok)
        times.append(result.milliseconds)
        if ok:
            read_times.append(result.milliseconds)
            variants[f"{result.engine}/{result.variant}"] += 1
            engines[str(result.engine)] += 1
    every = read["moderate"] + read["severe"]
    moderate_times = [t for t, p in zip(times, photos, strict=True) if p.severity == "moderate"]
    out: dict[str, Any] = {
        f"decode_{key}_rate_moderate": round(sum(read["moderate"]) / len(read["moderate"]), 4),
        f"decode_{key}_rate_severe": round(sum(read["severe"]) / len(read["severe"]), 4),
        f"decode_{key}_rate_all": round(sum(every) / len(every), 4),
        f"decode_{key}_ms_p50": round(percentile(times, 50), 1),
        f"decode_{key}_ms_p99": round(percentile(times, 99), 1),
        f"decode_{key}_ms_p99_read": round(percentile(read_times, 99), 1),
        f"decode_{key}_ms_p99_moderate": round(percentile(moderate_times, 99), 1),
        f"decode_{key}_ms_max": round(max(times), 1),
    }
    for name, count in sorted(variants.items()):  # which rung read the code: the ladder's use
        out[f"decode_{key}_read_by_{name.replace('/', '_')}"] = count
    return out


def _page_ms(engine: QrDecoder, page: Image.Image, text: str) -> float:
    assert engine.decode(page) == [text], f"{engine.name} does not read the clean page"
    times = []
    for _ in range(PAGE_RUNS):
        start = time.perf_counter()
        engine.decode(page)
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 1)


def _phone_jpeg(photo: Photo) -> bytes:
    """A photo enlarged to a phone camera's 12 Mpx (3024x4032), saved at JPEG quality 90."""
    image = photo.image().resize((3024, 4032), Image.Resampling.BICUBIC)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def run(seed: int = SEED, count: int = PHOTOS) -> dict[str, Any]:
    out: dict[str, Any] = {}
    start = time.perf_counter()
    photos = photo_set(seed, count)
    out["decode_photos"] = len(photos)
    out["decode_photos_severe"] = sum(p.severity == "severe" for p in photos)
    out["decode_photos_generate_seconds_untimed"] = round(time.perf_counter() - start, 1)

    zxing, pyzbar = ZxingDecoder(), PyzbarDecoder()
    text = photos[0].text
    page = page_image().convert("L")
    out["decode_page_zxing_ms"] = _page_ms(zxing, page, text)
    out["decode_page_pyzbar_ms"] = _page_ms(pyzbar, page, text)
    page_png = io.BytesIO()
    page_image().save(page_png, "PNG")
    combined = PhotoDecoder([zxing, pyzbar])
    page_times = [combined.decode_bytes(page_png.getvalue()).milliseconds for _ in range(10)]
    out["decode_page_photo_png_ms"] = round(statistics.median(page_times), 1)

    out.update(_run_set(PhotoDecoder([zxing]), photos, "zxing"))
    out.update(_run_set(PhotoDecoder([pyzbar]), photos, "pyzbar"))
    out.update(_run_set(combined, photos, "photo"))

    moderate = next(p for p in photos if p.severity == "moderate" and p.params["shot"] == "page")
    phone = _phone_jpeg(moderate)
    results = [combined.decode_bytes(phone) for _ in range(10)]
    assert all(r.texts == (text,) for r in results), "the 12 Mpx photo is not read"
    out["decode_photo_12mpx_ms"] = round(statistics.median(r.milliseconds for r in results), 1)
    return out


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key:44} {value}")
