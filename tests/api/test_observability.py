"""What an operator watches: liveness, readiness with its reasons, Prometheus metrics, and
JSON log lines with a request id and no personal data."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine

from api.adapters.metrics import JsonFormatter
from api.adapters.sequencer_lock import SequencerLock
from api.app import create_app
from api.bootstrap import open_services
from api.settings import Settings
from tests.api import killing
from tests.api.conftest import World, patient, tampered
from tests.conftest import ROOT


def _metrics(world: World) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = world.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_liveness_and_readiness(world: World) -> None:
    assert world.client.get("/healthz").json() == {"status": "ok"}
    ready = world.client.get("/readyz")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["ready"] and body["problems"] == []
    assert body["database"] == "ok" and body["ledger"] == "ok"
    assert body["anchoring_lag_leaves"] == 0


def test_not_ready_when_anchoring_falls_behind(world: World) -> None:
    world.services.settings.ready_max_anchoring_lag = 2
    with world.services.ledger.exclusive() as parts:
        parts.sequencer.interval_ms = 3_600_000  # a checkpoint every 4 leaves or hour
    world.upload([world.item(n) for n in range(3)])
    world.services.anchoring.run_once()  # appended to the log, not anchored
    body = world.client.get("/readyz")
    assert body.status_code == 503
    assert body.json()["problems"] == ["anchoring_lag"]
    assert body.json()["anchoring_lag_leaves"] == 3
    world.services.anchoring.run_once(force=True)
    assert world.client.get("/readyz").status_code == 200


def test_not_ready_when_anchoring_stands_still_while_invoices_wait(world: World) -> None:
    world.services.settings.ready_max_anchoring_stall_s = 1.5
    world.upload([world.item(n) for n in range(3)])  # nothing anchors them (no loop here)
    body = world.client.get("/readyz").json()
    assert body["ready"] and 0 < body["anchoring_stalled_seconds"] < 1.5
    time.sleep(1.6)
    stalled = world.client.get("/readyz")
    assert stalled.status_code == 503
    assert stalled.json()["problems"] == ["anchoring_stalled"]
    assert stalled.json()["anchoring_stalled_seconds"] > 1.5
    # A backlog that is being appended is not stalled, however old its oldest invoice.
    assert world.services.anchoring.drain(limit=1) == 1
    moving = world.client.get("/readyz").json()
    assert moving["ready"] and moving["anchoring_stalled_seconds"] < 1.5
    # Appended, but no checkpoint for longer than the interval allows: stalled again.
    with world.services.ledger.exclusive() as parts:
        parts.sequencer.interval_ms = 500
    world.services.anchoring.drain()
    time.sleep(2.3)
    assert world.client.get("/readyz").json()["problems"] == ["anchoring_stalled"]
    world.services.anchoring.run_once(force=True)
    body = world.client.get("/readyz").json()
    assert body["ready"] and body["anchoring_stalled_seconds"] == 0


def test_not_ready_when_nobody_holds_the_sequencer_lock(world: World) -> None:
    services = world.services
    assert world.client.get("/readyz").status_code == 200  # this app runs no sequencer loop
    state = services.health.readiness(sequencer_expected=True)  # a process that does, whose died
    assert state["problems"] == ["sequencer"] and state["sequencer"] == "no holder"
    lock = SequencerLock(services.engine, services.settings.data_dir)
    try:
        assert lock.try_acquire()
        state = services.health.readiness(sequencer_expected=True)
        assert state["ready"] and state["sequencer"] == "ok"
        assert state["sequencer_holder"].endswith(f":{os.getpid()}")
    finally:
        lock.release()
    assert services.health.readiness(sequencer_expected=True)["sequencer"] == "no holder"


HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from api.db.session import make_engine
    from api.adapters.sequencer_lock import SequencerLock
    assert SequencerLock(make_engine(sys.argv[1]), Path(sys.argv[2])).try_acquire()
    print("held", flush=True)
    time.sleep(600)
""")


def test_not_ready_while_the_lock_holder_is_not_alive(
    tmp_path: Path, database_url: str | None
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database_url=database_url,
        anchor_interval_ms=0,
        payers=("basic",),
        ready_max_sequencer_silence_s=1,
    )
    services = open_services(settings)
    holder = subprocess.Popen(  # takes the lock before this service starts, then stops
        [sys.executable, "-c", HOLDER, settings.database, str(tmp_path)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        holder.send_signal(signal.SIGSTOP)  # holds the lock, sequences nothing
        with TestClient(create_app(settings, services, background=True)) as client:

            def sequencer() -> dict[str, Any]:
                answer = client.get("/readyz")
                body: dict[str, Any] = answer.json()
                assert (answer.status_code == 200) == body["ready"]
                return body

            killing.wait_until(lambda: sequencer()["sequencer"] == "silent", 10, "still ready")
            body = sequencer()
            assert body["problems"] == ["sequencer"]
            assert body["sequencer_holder"].endswith(f":{holder.pid}")
            holder.send_signal(signal.SIGKILL)  # the service's own loop takes over
            holder.wait(timeout=10)
            killing.wait_until(lambda: sequencer()["ready"], 10, "no takeover")
            assert sequencer()["sequencer_holder"].endswith(f":{os.getpid()}")
    finally:
        holder.kill()


def test_not_ready_without_the_database(world: World, tmp_path: Path) -> None:
    # A real engine whose database cannot be opened (its directory does not exist).
    world.services.sessions.configure(
        bind=create_engine(f"sqlite:///{tmp_path}/missing/dir/db.sqlite")
    )
    body = world.client.get("/readyz")
    assert body.status_code == 503
    assert body.json()["problems"] == ["database"]
    assert body.json()["database"].startswith("error: OperationalError")


def test_metrics_count_what_happened(world: World) -> None:
    before = _metrics(world)
    world.upload([world.item(1), tampered(world.item(2), check_code="00000")])  # one refused
    world.services.anchoring.run_once(force=True)
    qr = world.read(
        f"/api/v1/invoices/{world.item(1)['invoice']['bill_code']}-"
        f"{world.item(1)['invoice']['bill_number']}/qr"
    ).json()["payload"]
    assert world.client.post("/api/v1/verify", json={"qr_text": qr}).json()["valid"]
    after = _metrics(world)

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert grew("zeroclaim_invoices_uploaded_total", outcome="stored") == 1
    assert grew("zeroclaim_invoices_uploaded_total", outcome="refused") == 1
    assert grew("zeroclaim_verifications_total", outcome="valid") == 1
    assert after[("zeroclaim_invoices", ())] == 1
    assert after[("zeroclaim_anchoring_lag_leaves", ())] == 0
    assert grew("zeroclaim_http_requests_total", route="/api/v1/verify", status="200") == 1
    # Routes are templates: no invoice reference in any label.
    routes = {
        dict(labels).get("route") for (name, labels) in after if name.startswith("zeroclaim_http")
    }
    assert "/api/v1/invoices/{key}/qr" in routes
    assert not any(r and world.item(1)["invoice"]["bill_number"] in r for r in routes)


def test_log_lines_carry_the_request_id_and_no_personal_data(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    person = patient(7)
    caplog.set_level(logging.INFO, logger="zeroclaim")
    response = world.client.post(
        "/api/v1/invoices/batches",
        headers={"X-API-Key": world.hospital.api_key, "X-Request-ID": "trace-42"},
        json={"items": [world.item(7)]},
    )
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "trace-42"
    generated = world.client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert len(generated.headers["X-Request-ID"]) == 32  # refused, a fresh one made
    lines = [JsonFormatter().format(r) for r in caplog.records]
    entries = [json.loads(line) for line in lines]
    upload = [e for e in entries if e.get("route") == "/api/v1/invoices/batches"]
    assert upload and upload[0]["request_id"] == "trace-42" and upload[0]["status"] == 200
    everything = "\n".join(lines)
    for secret in (person["id_number"], person["name"]):
        assert secret not in everything
