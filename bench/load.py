"""Load: concurrent clients over loopback against the running service, as ``make run`` starts it
(one uvicorn process, the embedded ledger, SQLite, the sequencer in the background).

Setup (not timed): the Quzhou-shaped demo dataset cut to one citizen in ten (about 1,500
invoices at the 132 hospitals) and moved to end yesterday; its hospitals registered, its
citizens enrolled, 60% of its invoices uploaded and anchored; the service started in its
own process; the citizens signed in. Timed: ``clients`` concurrent clients work through a
shuffled mix: hospitals upload the other 40% in batches of 20; verifiers send QR texts of
stored invoices; citizens claim their stored invoices from basic insurance, and one claim in
ten is sent a second time (a deliberate duplicate, which must get 409). Reported per kind:
requests, throughput, p50 and p99 latency, answers by status. Required: no 5xx; exactly one
accepted claim per invoice; and, once the service has settled every approved claim, no
payment above an invoice's total and the database in agreement with the chain
(``/api/v1/audit/reconciliation``).
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from api import demo_data
from api.db import models
from api.demo import (
    DEMO_CITIZEN_PASSWORD,
    batch_items,
    enrol_demo_citizens,
    register_demo_hospitals,
    shifted,
)
from api.invoice_store import payload_of, rows_by_id
from api.services import open_services
from api.settings import Settings
from verifier.canonical import invoice_id
from verifier.qr import encode_payload

ROOT = Path(__file__).resolve().parent.parent
ADMIN = {"Authorization": "Bearer dev-admin-token"}


def run(clients: int = 16, every: int = 10, seed: int = 2025) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        env = {
            "ZEROCLAIM_DATA_DIR": str(data_dir),
            "ZEROCLAIM_ANCHOR_INTERVAL_MS": "500",
            "ZEROCLAIM_VERIFY_PER_MINUTE": "1000000",
            "ZEROCLAIM_VERIFY_BURST": "1000000",
        }
        settings = Settings.model_validate(
            {k.removeprefix("ZEROCLAIM_").lower(): v for k, v in env.items()}
        )
        plan = _setup(settings, every, seed)
        port = _free_port()
        command = ["uvicorn", "api.app:app_from_environment", "--factory", "--host", "127.0.0.1"]
        server = subprocess.Popen(
            [sys.executable, "-m", *command, "--port", str(port), "--log-level", "warning"],
            cwd=ROOT,
            env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_for(url, server)
            out = asyncio.run(_drive(url, plan, clients))
        finally:
            server.terminate()
            server.wait(timeout=30)
        out.update(_payments(settings, plan["dataset"]))
        _require(out)
        return out


def _require(out: dict[str, Any]) -> None:
    """The run fails loudly when what must hold does not."""
    broken = {
        "server errors": out["load_5xx"],
        "invoices accepted twice": out["load_claims_accepted_twice"],
        "invoices never accepted": out["load_invoices_claimed"] - out["load_claims_accepted_once"],
        "double payments": out["load_double_payments"],
        "payments above the total": out["load_paid_above_total"],
        "claims left unsettled": 0 if out["load_settled"] else 1,
        "database and chain disagree": 0 if out["load_reconciliation_consistent"] else 1,
    }
    if failed := {k: v for k, v in broken.items() if v}:
        raise RuntimeError(f"load run broke its requirements: {failed}")


def _setup(settings: Settings, every: int, seed: int) -> dict[str, Any]:
    """Seeds the service's data directory; returns the jobs' material."""
    dataset = _subset(demo_data.generate(seed, "quzhou"), every)
    last = max(inv.issued_at for inv in dataset.invoices).astimezone(demo_data.TZ).date()
    dataset = shifted(dataset, (datetime.now(demo_data.TZ).date() - timedelta(days=1) - last).days)
    services = open_services(settings)
    try:
        api_keys = register_demo_hospitals(services, dataset)
        enrol_demo_citizens(services, dataset)
        signatures = demo_data.sign_invoices(dataset, services.domain)
        stored: list[int] = []
        later: list[tuple[str, list[dict[str, Any]]]] = []
        by_hospital = batch_items(dataset, signatures)
        indexes: dict[str, list[int]] = defaultdict(list)
        for i, inv in enumerate(dataset.invoices):
            indexes[inv.hospital].append(i)
        for hospital, items in by_hospital.items():
            cut = len(items) * 3 // 5
            services.ingest.upload(hospital, items[:cut])
            stored += indexes[hospital][:cut]
            later += [(hospital, items[lo : lo + 20]) for lo in range(cut, len(items), 20)]
        with services.lock:
            services.anchoring.run_once(force=True)
        with services.sessions() as db:
            rows = rows_by_id(db, [_id(dataset, i) for i in stored])
        qr = [encode_payload(payload_of(services.domain, row)) for row in rows.values()]
    finally:
        services.close()
    return {
        "dataset": dataset,
        "api_keys": api_keys,
        "uploads": later,
        "stored": stored,
        "qr": qr,
    }


def _subset(dataset: demo_data.DemoDataset, every: int) -> demo_data.DemoDataset:
    """The invoices of one citizen in ``every`` (each with their whole history): the Quzhou
    mix of hospitals and visits, smaller."""
    keep = [i for i in range(len(dataset.invoices)) if dataset.patients[i].citizen % every == 0]
    return replace(
        dataset,
        invoices=tuple(dataset.invoices[i] for i in keep),
        patients=tuple(dataset.patients[i] for i in keep),
    )


def _id(dataset: demo_data.DemoDataset, i: int) -> bytes:
    inv = dataset.invoices[i]
    return invoice_id(inv.bill_code, inv.bill_number)


async def _drive(url: str, plan: dict[str, Any], clients: int) -> dict[str, Any]:
    dataset = plan["dataset"]
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        tokens: dict[str, str] = {}
        for i in plan["stored"]:
            number = dataset.citizen_of(i).id_number
            if number not in tokens:
                signed = await http.post(
                    "/api/v1/citizens/session",
                    json={"id_number": number, "password": DEMO_CITIZEN_PASSWORD},
                )
                tokens[number] = signed.json()["token"]
        rng = random.Random(7)
        jobs: list[tuple[str, dict[str, Any]]] = []
        for hospital, items in plan["uploads"]:
            jobs.append(
                (
                    "upload",
                    {
                        "url": "/api/v1/invoices/batches",
                        "headers": {"X-API-Key": plan["api_keys"][hospital]},
                        "json": {"items": items},
                    },
                )
            )
        for text in plan["qr"]:
            jobs.append(("verify", {"url": "/api/v1/verify", "json": {"qr_text": text}}))
        claims = []
        for i in plan["stored"]:
            inv = dataset.invoices[i]
            claim = {
                "url": "/api/v1/claims",
                "headers": {"Authorization": f"Bearer {tokens[dataset.citizen_of(i).id_number]}"},
                "json": {"invoice": f"{inv.bill_code}-{inv.bill_number}", "payer": "basic"},
            }
            claims.append(("claim", claim))
            if rng.random() < 0.1:
                claims.append(("claim_again", claim))
        jobs += claims
        rng.shuffle(jobs)
        queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        for job in jobs:
            queue.put_nowait(job)
        results: list[tuple[str, int, float, str]] = []

        async def client() -> None:
            while not queue.empty():
                kind, request = queue.get_nowait()
                started = time.perf_counter()
                response = await http.post(
                    request["url"], headers=request.get("headers"), json=request["json"]
                )
                ms = (time.perf_counter() - started) * 1000
                reference = request["json"].get("invoice", "")
                results.append((kind, response.status_code, ms, reference))

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - started
        settled = await _settled(http)
        reconciliation = (await http.get("/api/v1/audit/reconciliation", headers=ADMIN)).json()
    return _report(results, elapsed, clients, settled, reconciliation, len(plan["stored"]))


async def _settled(http: httpx.AsyncClient, timeout: float = 120) -> bool:
    """Waits for the service's loop to settle every approved claim."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        waiting = await http.get(
            "/api/v1/review/claims", params={"state": "approved", "limit": 1}, headers=ADMIN
        )
        settling = await http.get(
            "/api/v1/review/claims", params={"state": "settling", "limit": 1}, headers=ADMIN
        )
        if waiting.json() == [] and settling.json() == []:
            return True
        await asyncio.sleep(0.5)
    return False


def _payments(settings: Settings, dataset: demo_data.DemoDataset) -> dict[str, Any]:
    """Payments as the database holds them, after the run: none twice, none above a total."""
    services = open_services(settings)
    try:
        with services.sessions() as db:
            rows = db.execute(
                select(models.Claim.invoice_id, models.Claim.payer, models.Payment.amount_fen).join(
                    models.Payment, models.Payment.claim_id == models.Claim.id
                )
            ).all()
            totals = {
                i: t for i, t in db.execute(select(models.Invoice.invoice_id, models.Invoice.total))
            }
    finally:
        services.close()
    per_payer = Counter((invoice, payer) for invoice, payer, _ in rows)
    paid: dict[bytes, int] = defaultdict(int)
    for invoice, _, amount in rows:
        paid[invoice] += amount
    return {
        "load_payments": len(rows),
        "load_double_payments": sum(1 for n in per_payer.values() if n > 1),
        "load_paid_above_total": sum(1 for i, fen in paid.items() if fen > totals[i]),
    }


def _report(
    results: list[tuple[str, int, float, str]],
    elapsed: float,
    clients: int,
    settled: bool,
    reconciliation: dict[str, Any],
    claimed: int,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "load_clients": clients,
        "load_seconds": round(elapsed, 2),
        "load_requests": len(results),
        "load_requests_per_second": round(len(results) / elapsed, 1),
        "load_5xx": sum(1 for _, status, _, _ in results if status >= 500),
    }
    for kind in ("upload", "verify", "claim", "claim_again"):
        mine = [r for r in results if r[0] == kind]
        if not mine:
            continue
        ms = sorted(r[2] for r in mine)
        out[f"load_{kind}_requests"] = len(mine)
        out[f"load_{kind}_ms_p50"] = round(statistics.median(ms), 1)
        out[f"load_{kind}_ms_p99"] = round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 1)
        out[f"load_{kind}_status"] = dict(sorted(Counter(str(r[1]) for r in mine).items()))
    accepted = Counter(r[3] for r in results if r[0].startswith("claim") and r[1] == 201)
    out["load_invoices_claimed"] = claimed
    out["load_claims_accepted_once"] = sum(1 for n in accepted.values() if n == 1)
    out["load_claims_accepted_twice"] = sum(1 for n in accepted.values() if n > 1)
    out["load_settled"] = settled
    out["load_reconciliation_consistent"] = bool(reconciliation.get("consistent"))
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(url: str, server: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("the service stopped at start-up")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code in (200, 503):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError("the service did not start")
