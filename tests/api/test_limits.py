"""Oversized bodies are refused early with 413: by their Content-Length before a byte is read,
or as they stream in without one; nothing of them is stored."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import func, select

from api.adapters.metrics import VERIFICATIONS
from api.db import models
from tests.api.conftest import World


def _verifications() -> float:
    return sum(
        s.value for m in VERIFICATIONS.collect() for s in m.samples if s.name.endswith("_total")
    )


def test_a_photo_over_the_limit_is_refused_before_it_is_read(world: World) -> None:
    world.services.settings.max_image_bytes = 1000
    before = _verifications()
    response = world.client.post(
        "/api/v1/verify/image",
        content=b"\x89PNG" + b"\x00" * 2000,
        headers={"Content-Type": "image/png"},
    )
    assert response.status_code == 413
    assert response.json()["error"] == {
        "code": "image_too_large",
        "message": "the request body may be at most 1,000 bytes",
        "limit": 1000,
    }
    assert _verifications() == before  # the endpoint never ran
    # At the limit it is read (and found to be no image).
    ok = world.client.post("/api/v1/verify/image", content=b"\x00" * 1000)
    assert ok.status_code == 200 and not ok.json()["valid"]


def test_a_streamed_body_is_cut_off_at_the_limit(world: World) -> None:
    world.services.settings.max_upload_bytes = 50_000
    item = world.item(1)

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"items": ['
        for _ in range(200):
            yield (str(item).replace("'", '"') + ",").encode()
        yield b"{}]}"

    response = world.client.post(
        "/api/v1/invoices/batches",
        content=chunks(),
        headers={"X-API-Key": world.hospital.api_key, "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "upload_too_large"
    with world.services.sessions() as db:
        assert db.scalar(select(func.count()).select_from(models.Invoice)) == 0


def test_other_requests_have_a_smaller_limit(world: World) -> None:
    response = world.client.post("/api/v1/verify", json={"qr_text": "ZC1:" + "A" * 2_000_000})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"
    upload = world.upload([world.item(2)])  # the upload limit is larger
    assert len(upload["items"]) == 1
