"""SIGKILL the running service once its worker pools have started, and start it again at once on
the same port and data: its workers died with it (none keeps the listening socket or the
sequencer lock), the port is free, the new process serves within seconds, and anchoring and
settlement resume. On SQLite and on PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from sqlalchemy import select

from api.adapters.hospital_files import sign_item
from api.bootstrap import open_services
from api.db import models
from api.demo.seed import CITIZENS_FILE, seed_demo
from api.settings import DEV_ADMIN_TOKEN, Settings
from chain.model import HospitalLevel
from tests.api import killing
from tests.api.conftest import KEY_FROM, invoice_json, patient
from tests.conftest import _free_port

ADMIN = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}
PAYERS = ("basic", "critical", "assistance", "commercial")
#: Past both pools' thresholds (api.flows.upload and api.flows.claim), so that both have started.
LARGE = 300
OWN = "H33089900009"  # not one of the demo's hospitals


def _setup(settings: Settings) -> dict[str, Any]:
    """Demo hospitals, citizens and invoices (anchored), and a hospital of the test's own
    with signed batches for later; the service is not running yet."""
    services = open_services(settings)
    try:
        assert seed_demo(services) > 0
        key = Account.from_key(hashlib.sha256(b"restart-test-hospital").digest())
        api_key = services.hospitals.register(
            OWN, "重启测试医院", HospitalLevel.TERTIARY, key.address, KEY_FROM
        )

        def signed(numbers: range) -> list[dict[str, Any]]:
            return [
                sign_item(
                    {"invoice": invoice_json(n, OWN, patient(n)), "patient": patient(n)},
                    key.key,
                    services.domain,
                )
                for n in numbers
            ]

        numbers = json.loads((settings.data_dir / CITIZENS_FILE).read_text())["id_numbers"]
        by_hash = {services.ingest.personal.id_number_hash(n): n for n in numbers}
        with services.sessions() as db:
            invoices = [
                (by_hash[row.patient_id_hash], f"{row.bill_code}-{row.bill_number}")
                for row in db.scalars(select(models.Invoice).order_by(models.Invoice.bill_number))
                if row.patient_id_hash in by_hash
            ]
        return {
            "api_key": api_key,
            "large": signed(range(1, LARGE + 1)),
            "later": signed(range(LARGE + 1, LARGE + 6)),
            "invoices": invoices,
        }
    finally:
        services.close()


def _claims(invoices: list[tuple[str, str]], payers: tuple[str, ...]) -> list[dict[str, str]]:
    return [
        {"id_number": number, "invoice": reference, "payer": payer}
        for number, reference in invoices
        for payer in payers
    ]


@pytest.fixture
def service_env(tmp_path: Path, database_url: str | None) -> dict[str, str]:
    """``ZEROCLAIM_*`` of a service on a free port over this test's data."""
    settings = Settings(data_dir=tmp_path, database_url=database_url)
    return {
        "ZEROCLAIM_DATA_DIR": str(tmp_path),
        "ZEROCLAIM_DATABASE_URL": settings.database,
        "ZEROCLAIM_HOST": "127.0.0.1",
        "ZEROCLAIM_PORT": str(_free_port()),
        "ZEROCLAIM_ANCHOR_INTERVAL_MS": "0",
    }


def _serving(url: str, proc: subprocess.Popen[bytes], log: Path) -> bool:
    assert proc.poll() is None, f"the service stopped:\n{log.read_text()[-3000:]}"
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _refused(port: int) -> bool:
    """True when nothing listens on the port (a connection is refused at once)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:  # accepted into a backlog nobody serves: someone still listens
        return False


def _kill_and_see_everything_go(proc: subprocess.Popen[bytes], port: int) -> None:
    """SIGKILL ``proc``: every process below it ends within seconds, and the port is free."""
    below = killing.descendants(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    killing.wait_until(
        lambda: not any(killing.alive(p) for p in below), 5, "workers outlived the service"
    )
    killing.wait_until(lambda: _refused(port), 5, "something still listens on the port")


def test_sigkill_then_restart_on_the_same_port_resumes_anchoring_and_settlement(
    tmp_path: Path, service_env: dict[str, str]
) -> None:
    plan = _setup(Settings(data_dir=tmp_path, database_url=service_env["ZEROCLAIM_DATABASE_URL"]))
    port = int(service_env["ZEROCLAIM_PORT"])
    url = f"http://127.0.0.1:{port}"
    hospital = {"X-API-Key": plan["api_key"]}
    started: list[subprocess.Popen[bytes]] = []
    workers: set[int] = set()
    try:
        first = killing.start_service(service_env, tmp_path / "first.log")
        started.append(first)
        killing.wait_until(lambda: _serving(url, first, tmp_path / "first.log"), 120, "no start")
        with httpx.Client(base_url=url, timeout=120) as http:
            upload = http.post(
                "/api/v1/invoices/batches", headers=hospital, json={"items": plan["large"]}
            )
            assert upload.status_code == 200 and upload.json()["accepted"] == LARGE, upload.text
            claims = _claims(plan["invoices"][:40], PAYERS)
            claims += claims[: LARGE - len(claims)]  # duplicates are refused, and count
            batch = http.post("/api/v1/office/claims/batch", headers=ADMIN, json={"claims": claims})
            assert batch.status_code == 200, batch.text
        workers = killing.descendants(first.pid)
        assert len(workers) >= 3, "the pools never started: the test would show nothing"
        _kill_and_see_everything_go(first, port)

        # At once, on the same port: a process that cannot bind it exits, and _serving fails.
        second = killing.start_service(service_env, tmp_path / "second.log")
        started.append(second)
        killing.wait_until(lambda: _serving(url, second, tmp_path / "second.log"), 60, "no restart")
        with httpx.Client(base_url=url, timeout=60) as http:
            upload = http.post(
                "/api/v1/invoices/batches", headers=hospital, json={"items": plan["later"]}
            )
            assert upload.status_code == 200 and upload.json()["accepted"] == 5, upload.text
            references = [item["reference"] for item in upload.json()["items"]]

            def anchored() -> bool:
                states = [
                    http.get(f"/api/v1/invoices/{r}", headers=hospital).json()["status"]
                    for r in references
                ]
                return set(states) == {"anchored"}

            killing.wait_until(anchored, 30, "an invoice uploaded after the restart not anchored")
            batch = http.post(
                "/api/v1/office/claims/batch",
                headers=ADMIN,
                json={"claims": _claims(plan["invoices"][40:], ("basic",))},
            )
            assert batch.status_code == 200, batch.text
            approved = {o["claim_id"] for o in batch.json() if o.get("state") == "approved"}
            assert approved, batch.json()

            def paid() -> bool:
                rows = http.get(
                    "/api/v1/review/claims", headers=ADMIN, params={"state": "paid", "limit": 500}
                ).json()
                return approved <= {c["claim_id"] for c in rows}

            killing.wait_until(paid, 30, "a claim approved after the restart not paid")
            ready = http.get("/readyz")
            assert ready.status_code == 200, ready.text
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
    finally:
        for proc in started:
            proc.kill()
            proc.wait(timeout=10)
        for pid in workers:  # on the old code they outlive the service: end them here
            if killing.alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_sigkill_of_the_uvicorn_supervisor_ends_its_workers(
    tmp_path: Path, service_env: dict[str, str]
) -> None:
    """``uvicorn --workers``: the workers share the supervisor's socket, and end with it."""
    settings = Settings(data_dir=tmp_path, database_url=service_env["ZEROCLAIM_DATABASE_URL"])
    services = open_services(settings)  # the schema and contract, before two workers start
    try:
        key = Account.create()
        api_key = services.hospitals.register(
            OWN, "重启测试医院", HospitalLevel.TERTIARY, key.address, KEY_FROM
        )
        items = [
            sign_item(
                {"invoice": invoice_json(n, OWN, patient(n)), "patient": patient(n)},
                key.key,
                services.domain,
            )
            for n in range(1, 4)
        ]
    finally:
        services.close()
    port = int(service_env["ZEROCLAIM_PORT"])
    url = f"http://127.0.0.1:{port}"
    uvicorn = ("-m", "uvicorn", "api.app:app_from_environment", "--factory", "--workers", "2")
    command = (*uvicorn, "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning")
    started: list[subprocess.Popen[bytes]] = []
    below: set[int] = set()

    def ready() -> bool:
        try:
            return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        first = killing.start_service(service_env, tmp_path / "first.log", command)
        started.append(first)
        killing.wait_until(ready, 120, "no start (a sequencer among the workers)")
        below = killing.descendants(first.pid)
        assert len(below) >= 2, "uvicorn started no workers"
        _kill_and_see_everything_go(first, port)

        second = killing.start_service(service_env, tmp_path / "second.log", command)
        started.append(second)
        killing.wait_until(ready, 60, "no restart (a sequencer among the workers)")
        upload = httpx.post(
            f"{url}/api/v1/invoices/batches",
            headers={"X-API-Key": api_key},
            json={"items": items},
            timeout=60,
        )
        assert upload.status_code == 200 and upload.json()["accepted"] == 3, upload.text
        reference = upload.json()["items"][0]["reference"]

        def anchored() -> bool:
            answer = httpx.get(
                f"{url}/api/v1/invoices/{reference}", headers={"X-API-Key": api_key}, timeout=10
            )
            return bool(answer.json()["status"] == "anchored")

        killing.wait_until(anchored, 30, "an invoice uploaded after the restart not anchored")
        below = killing.descendants(second.pid)
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
        killing.wait_until(
            lambda: not any(killing.alive(p) for p in below), 10, "a worker outlived SIGTERM"
        )
    finally:
        for proc in started:
            proc.kill()
            proc.wait(timeout=10)
        for pid in below:
            if killing.alive(pid):
                os.kill(pid, signal.SIGKILL)
