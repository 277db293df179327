"""Memory against hostile requests, measured on a real server process: a tiny PNG that claims
a huge image, six at once, is refused from its header; the largest invoice (20,000 lines) is
printed page by page.

The peak is the server's own ``VmHWM`` (the most memory it held), reset just before the
requests through ``/proc/<pid>/clear_refs`` so that what it held while starting does not
count. Before the fix the six PNGs took the server from 0.6 GB to 3.8 GB (0.8 GB each) and
the print held every page at once: 926 MB for 4,000 lines, 4.6 GB for 20,000.
"""

from __future__ import annotations

import io
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select

from api.adapters.hospital_files import sign_item
from api.app import create_app
from api.db import models
from api.settings import Settings
from chain.model import HospitalLevel
from tests.api import killing
from tests.api.conftest import HOSPITAL, KEY_FROM, World, invoice_json, patient
from tests.verifier.test_decode import blank_png
from verifier.invoice import MAX_LINES
from verifier.qr import qr_png

MiB = 1024 * 1024
PRINT_BUDGET = 300 * MiB  # the most the 20,000-line print may add to the server
REFUSAL_BUDGET = 50 * MiB  # six refused images: their bytes and nothing more


@dataclass
class Server:
    url: str
    pid: int
    api_key: str
    reference: str  # the invoice of MAX_LINES lines


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _largest_invoice() -> dict[str, object]:
    """Invoice 1 of the test hospital with MAX_LINES lines, the three lines of
    ``invoice_json`` over and over, a second apart from 04:00 (before the 10:00 issue)."""
    template = invoice_json(1)
    lines = []
    for i in range(MAX_LINES):
        line = dict(template["lines"][i % 3])  # type: ignore[index]
        at = 4 * 3600 + i
        line["time"] = f"2025-03-01T{at // 3600:02d}:{at // 60 % 60:02d}:{at % 60:02d}+08:00"
        lines.append(line)
    total = sum(int(line["amount"]) for line in lines)  # type: ignore[call-overload]
    return invoice_json(1, lines=lines, total=total, insurance_paid=0, patient_paid=total)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The service in its own process (``zeroclaim run``) on SQLite, holding one invoice of
    MAX_LINES lines, uploaded beforehand from this process."""
    data_dir = tmp_path_factory.mktemp("memory")
    settings = Settings(data_dir=data_dir, payers=("basic",), anchor_interval_ms=0)
    key = Account.create()
    with TestClient(create_app(settings, background=False)) as client:
        services = client.app.state.services  # type: ignore[attr-defined]
        api_key = services.hospitals.register(
            HOSPITAL, "衢州市人民医院", HospitalLevel.TERTIARY, key.address, KEY_FROM
        )
        item = sign_item(
            {"invoice": _largest_invoice(), "patient": patient(1)}, key.key, services.domain
        )
        upload = client.post(
            "/api/v1/invoices/batches", headers={"X-API-Key": api_key}, json={"items": [item]}
        )
        assert upload.status_code == 200 and upload.json()["accepted"] == 1, upload.text
        reference = upload.json()["items"][0]["reference"]
    port = _port()
    env = {
        "ZEROCLAIM_DATA_DIR": str(data_dir),
        "ZEROCLAIM_PORT": str(port),
        "ZEROCLAIM_PAYERS": '["basic"]',
        "ZEROCLAIM_ANCHOR_INTERVAL_MS": "0",
    }
    log = data_dir / "service.log"
    proc = killing.start_service(env, log)
    url = f"http://127.0.0.1:{port}"
    try:
        killing.wait_until(lambda: _serving(url, proc, log), 120, "the service did not start")
        yield Server(url, proc.pid, api_key, reference)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _serving(url: str, proc: subprocess.Popen[bytes], log: Path) -> bool:
    assert proc.poll() is None, f"the service stopped:\n{log.read_text()[-3000:]}"
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _memory(pid: int, field: str) -> int:
    """``VmHWM`` (the peak) or ``VmRSS`` (now) of process ``pid``, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for process {pid}")


def _reset_peak(pid: int) -> int:
    """Resets the peak of ``pid`` to what it holds now, and returns that."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return _memory(pid, "VmHWM")


@pytest.mark.slow
def test_six_hostile_pngs_at_once_are_refused_without_decoding(server: Server) -> None:
    strip = blank_png(39_000_000, 1)  # 38 KB: few pixels, but 0.8 GB to decode
    square = blank_png(6324, 6324, color_type=6)  # 155 KB of RGBA under MAX_PIXELS: 0.8 GB
    assert len(strip) < 50_000 and len(square) < 200_000
    before = _reset_peak(server.pid)

    def post(data: bytes) -> httpx.Response:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            return client.post(
                "/api/v1/verify/image", content=data, headers={"Content-Type": "image/png"}
            )

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=7) as pool:
        answers = list(pool.map(post, [strip, square] * 3))
        health = httpx.get(f"{server.url}/healthz", timeout=10)
    took = time.monotonic() - started
    peak = _memory(server.pid, "VmHWM")
    assert [a.status_code for a in answers] == [413] * 6, [a.text for a in answers]
    assert [a.json()["error"]["code"] for a in answers] == [
        "image_side_too_long",
        "image_too_many_bytes",
    ] * 3
    assert answers[0].json()["error"]["width"] == 39_000_000
    assert health.status_code == 200 and took < 10
    assert peak - before < REFUSAL_BUDGET, f"{(peak - before) / MiB:.0f} MiB"


@pytest.mark.slow
def test_the_largest_invoice_prints_within_300_mb(server: Server) -> None:
    before = _reset_peak(server.pid)
    received = 0
    tail = b""
    with (
        httpx.Client(base_url=server.url, timeout=600) as client,
        client.stream(
            "GET",
            f"/api/v1/invoices/{server.reference}/print.pdf",
            headers={"X-API-Key": server.api_key},
        ) as response,
    ):
        assert response.status_code == 200, response.read()
        pages = int(response.headers["X-Page-Count"])
        for chunk in response.iter_bytes():
            received += len(chunk)
            tail = (tail + chunk)[-64:]
    peak = _memory(server.pid, "VmHWM")
    assert pages > MAX_LINES // 60  # at most 52 rows a page: about 400 pages
    assert peak - before < PRINT_BUDGET, f"{(peak - before) / MiB:.0f} MiB for {pages} pages"
    assert received > pages * 100_000 and tail.endswith(b"%%EOF\n")


# The photo endpoints in the application (SQLite and PostgreSQL)


def _citizen(world: World) -> dict[str, str]:
    mine = patient(1)
    world.services.citizens.enrol(mine["id_number"], mine["name"], "F", date(1990, 1, 1), "pw-1")
    token = world.client.post(
        "/api/v1/citizens/session", json={"id_number": mine["id_number"], "password": "pw-1"}
    ).json()["token"]
    return {"Authorization": f"Bearer {token}", "Content-Type": "image/png"}


@pytest.mark.parametrize(
    ("data", "code", "details"),
    [
        (blank_png(39_000_000, 1), "image_side_too_long", {"width": 39_000_000, "height": 1}),
        (blank_png(6324, 6324, 6), "image_too_many_bytes", {"decoded_bytes": 6324 * 6324 * 4}),
        (blank_png(7000, 6000), "image_too_many_pixels", {"pixels": 42_000_000}),
    ],
    ids=["strip", "rgba", "pixels"],
)
def test_both_photo_endpoints_refuse_a_huge_image_with_413(
    world: World, data: bytes, code: str, details: dict[str, int]
) -> None:
    citizen = _citizen(world)
    for path, headers in (
        ("/api/v1/verify/image", {"Content-Type": "image/png"}),
        ("/api/v1/claims/photo", citizen),
    ):
        response = world.client.post(path, content=data, headers=headers)
        assert response.status_code == 413, response.text
        error = response.json()["error"]
        assert error["code"] == code and details.items() <= error.items()
    with world.services.sessions() as db:
        assert db.scalar(select(func.count()).select_from(models.Claim)) == 0


def test_the_photo_limits_are_settings(world: World) -> None:
    code = qr_png("ZC1:NOT-A-PAYLOAD", scale=4)  # a real PNG of a QR code
    with Image.open(io.BytesIO(code)) as image:
        side = image.width
    world.services.settings.max_image_side = side - 1
    refused = world.client.post("/api/v1/verify/image", content=code)
    assert refused.status_code == 413 and refused.json()["error"]["limit"] == side - 1
    world.services.settings.max_image_side = side
    read = world.client.post("/api/v1/verify/image", content=code)
    assert read.status_code == 200 and read.json()["failed_step"] != "decode"


def test_claims_by_photo_are_rate_limited_per_citizen(world: World) -> None:
    citizen = _citizen(world)
    photo = qr_png("ZC1:NOT-A-PAYLOAD", scale=4)
    burst = world.services.settings.photo_claims_burst
    answers = [
        world.client.post("/api/v1/claims/photo", content=photo, headers=citizen)
        for _ in range(burst + 1)
    ]
    assert [a.status_code for a in answers[:burst]] == [422] * burst  # read, not an invoice
    assert answers[burst].status_code == 429
    error = answers[burst].json()["error"]
    assert error["code"] == "rate_limited" and "claims by photo" in error["message"]
    assert error["retry_after_seconds"] > 0
    # Someone else (another citizen from the same client) is not held back by that.
    other = patient(2)
    world.services.citizens.enrol(other["id_number"], other["name"], "M", date(1980, 1, 1), "pw-2")
    token = world.client.post(
        "/api/v1/citizens/session", json={"id_number": other["id_number"], "password": "pw-2"}
    ).json()["token"]
    theirs = world.client.post(
        "/api/v1/claims/photo", content=photo, headers={"Authorization": f"Bearer {token}"}
    )
    assert theirs.status_code == 422


def test_claims_by_photo_share_the_clients_verification_budget(world: World) -> None:
    citizen = _citizen(world)
    photo = qr_png("ZC1:NOT-A-PAYLOAD", scale=4)
    for _ in range(world.services.settings.verify_burst):
        assert world.client.post("/api/v1/verify/image", content=photo).status_code == 200
    refused = world.client.post("/api/v1/claims/photo", content=photo, headers=citizen)
    assert refused.status_code == 429
    assert "verifications" in refused.json()["error"]["message"]
