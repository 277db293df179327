"""The hospital's command line against a real service process: keygen, register (by the
authority), sign JSON and CSV batches, upload with per-invoice results."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from api.adapters.hospital_files import read_csv_batch, write_csv_batch
from api.cli import main
from tests.api.conftest import HOSPITAL, invoice_json, patient
from tests.conftest import ROOT


@contextmanager
def running_service(data_dir: Path) -> Iterator[str]:
    """The service as its own process (``zeroclaim run``) on a free port; yields its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "ZEROCLAIM_DATA_DIR": str(data_dir),
        "ZEROCLAIM_PORT": str(port),
        "ZEROCLAIM_ANCHOR_INTERVAL_MS": "100",
        "ZEROCLAIM_PAYERS": '["basic"]',
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"service did not start: {proc.stdout.read() if proc.stdout else ''}")
        time.sleep(0.2)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    with running_service(tmp_path / "srv") as url:
        yield url


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object], str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, json.loads(out.strip().splitlines()[-1]), err


def test_hospital_signs_and_uploads_json_and_csv(
    server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZEROCLAIM_HOSPITAL_KEY_PASSWORD", "hospital-secret")
    keystore = tmp_path / "hospital-key.json"
    _, key, _ = run_cli(capsys, "hospital", "keygen", "--keystore", str(keystore))
    assert keystore.stat().st_mode & 0o777 == 0o600
    _, registered, _ = run_cli(
        capsys,
        "hospital",
        "register",
        HOSPITAL,
        "--name",
        "衢州市人民医院",
        "--level",
        "tertiary",
        "--signer",
        str(key["address"]),
        "--valid-from",
        "2024-01-01T00:00:00+08:00",
        "--url",
        server,
        "--admin-token",
        "dev-admin-token",
    )
    api_key = str(registered["api_key"])
    ledger = httpx.get(f"{server}/api/v1/ledger").json()

    items = []
    for n in (1, 2, 3):
        pat = patient(n)
        items.append({"invoice": invoice_json(n, pat=pat), "patient": pat})
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps({"items": items}, ensure_ascii=False))
    signed = tmp_path / "signed.json"
    code, summary, _ = run_cli(
        capsys,
        "hospital",
        "sign",
        str(batch),
        "--keystore",
        str(keystore),
        "--out",
        str(signed),
        "--chain-id",
        str(ledger["chain_id"]),
        "--contract",
        ledger["contract"],
    )
    assert code == 0 and summary == {"signed": 3, "refused": 0, "out": str(signed)}
    code, summary, _ = run_cli(
        capsys, "hospital", "upload", str(signed), "--url", server, "--api-key", api_key
    )
    assert (code, summary) == (0, {"uploaded": 3, "accepted": 3, "already_there": 0, "refused": 0})

    # A CSV batch with one bad invoice: the good ones land, the bad one is reported by field.
    more = []
    for n in (4, 5):
        pat = patient(n)
        more.append({"invoice": invoice_json(n, pat=pat), "patient": pat})
    csv_path = tmp_path / "batch.csv"
    csv_path.write_text(write_csv_batch(more))
    assert read_csv_batch(csv_path.read_text()) == more  # the CSV form round-trips
    code, _, _ = run_cli(
        capsys,
        "hospital",
        "sign",
        str(csv_path),
        "--keystore",
        str(keystore),
        "--out",
        str(tmp_path / "signed2.json"),
        "--chain-id",
        str(ledger["chain_id"]),
        "--contract",
        ledger["contract"],
    )
    assert code == 0
    signed_items = json.loads((tmp_path / "signed2.json").read_text())["items"]
    signed_items[1]["invoice"]["lines"][0]["amount"] += 1  # altered after signing
    broken = tmp_path / "broken.csv"
    broken.write_text(write_csv_batch(signed_items))
    code, summary, err = run_cli(
        capsys, "hospital", "upload", str(broken), "--url", server, "--api-key", api_key
    )
    assert (code, summary) == (1, {"uploaded": 2, "accepted": 1, "already_there": 0, "refused": 1})
    assert "refused 33082025-0000000005 (invalid_invoice): lines[0].amount:" in err

    deadline = time.monotonic() + 30
    while True:
        body = httpx.get(
            f"{server}/api/v1/invoices/33082025-0000000004", headers={"X-API-Key": api_key}
        ).json()
        if body["status"] == "anchored" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert body["status"] == "anchored" and body["checkpoint_size"] >= 4


def test_register_needs_the_admin_token(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "hospital",
            "register",
            "H1",
            "--name",
            "x",
            "--level",
            "primary",
            "--signer",
            "0x" + "11" * 20,
            "--url",
            server,
            "--admin-token",
            "wrong",
        ]
    )
    assert code == 2  # a refused credential: nothing done, fix the input
    err = capsys.readouterr().err
    assert err.startswith(f"zeroclaim: the service at {server} refused the admin token (HTTP 401 ")
    assert "staff_token_invalid" in err and len(err.splitlines()) == 1
