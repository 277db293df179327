"""Load: concurrent clients over loopback against the running service, as ``make run`` starts it
(one uvicorn process, the embedded ledger, SQLite, the sequencer in the background).

Setup (not timed): the Quzhou-shaped demo dataset cut to one citizen in ten (about 1,500
invoices at the 132 hospitals) and moved to end yesterday; its hospitals registered, its
citizens enrolled, 60% of its invoices uploaded and anchored; the service started in its
own process; the citizens signed in. Timed: ``clients`` concurrent clients work through a
shuffled mix: hospitals upload the other 40% in batches of 20; verifiers send QR texts of
stored invoices; citizens claim their stored invoices from basic insurance, and one claim in
ten is sent a second time (a deliberate duplicate, which must get 409). Attacks are mixed in
among the same clients: verifications with a wrong check code (typed, and as a fiscal pointer
QR) of bills not otherwise verified; a PNG of a few kilobytes declaring 39,000,000 x 1 pixels
and a body over the image limit, to ``/api/v1/verify/image`` and ``/api/v1/claims/photo``;
and a payer's staff sending six approve and reject decisions at once on a claim in review
(429, 409, 413 and 422 are the expected answers). A dedicated thread asks ``/healthz`` every
50 ms throughout, and another samples the service's resident memory (``VmRSS`` of the process
and its children, summed) every 100 ms. Reported per kind: requests, throughput, p50 and p99
latency, answers by status. Required: no 5xx; no attack accepted; one decision per claim in
review; ``/healthz`` p99 under 100 ms; the service's peak memory under 1 GiB; exactly one
accepted claim per invoice; and, once the service has settled every approved claim, no payment
above an invoice's total and the database in agreement with the chain
(``/api/v1/audit/reconciliation``).
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from api.bootstrap import open_services
from api.db import models
from api.demo import data as demo_data
from api.demo.seed import (
    DEMO_CITIZEN_PASSWORD,
    batch_items,
    enrol_demo_citizens,
    register_demo_hospitals,
    shifted,
)
from api.read.invoices import payload_of, rows_by_id
from api.settings import Settings
from verifier.canonical import invoice_id
from verifier.qr import encode_payload

ROOT = Path(__file__).resolve().parent.parent
ADMIN = {"Authorization": "Bearer dev-admin-token"}
HEALTHZ_P99_MS = 100.0  # the bound on /healthz's 99th percentile during the run
PEAK_RSS_MB = 1024.0  # the bound on the service's resident memory, children included
WRONG_CHECK_CODE = "000000"
# Attacks come from another loopback address: the service limits failures per client, and an
# attacker is not the verifier next to it (all of 127.0.0.0/8 is loopback on Linux).
ATTACKER = "127.0.0.2"
RACE_DECISIONS = 6  # decisions sent at once on one claim in review, half approve


class LoadRequirementsBroken(RuntimeError):
    """Raised when a run breaks what it requires; ``figures`` holds what it measured."""

    def __init__(self, failed: dict[str, Any], figures: dict[str, Any]) -> None:
        super().__init__(f"load run broke its requirements: {failed}")
        self.failed = failed
        self.figures = figures


def run(clients: int = 16, every: int = 10, seed: int = 2025, timed: bool = True) -> dict[str, Any]:
    """The load run; raises ``LoadRequirementsBroken`` when a requirement breaks. ``timed``
    False leaves out the latency bound (the small run in ``make test``: speed is measured by
    the benchmark, not by a test on a shared machine)."""
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        env = {
            "ZEROCLAIM_DATA_DIR": str(data_dir),
            "ZEROCLAIM_ANCHOR_INTERVAL_MS": "500",
            "ZEROCLAIM_VERIFY_PER_MINUTE": "1000000",
            "ZEROCLAIM_VERIFY_BURST": "1000000",
            # Every citizen signs in from this one address before the timed run.
            "ZEROCLAIM_SIGN_IN_PER_MINUTE": "1000000",
            "ZEROCLAIM_SIGN_IN_BURST": "1000000",
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
        url = f"http://127.0.0.1:{port}"
        health, memory = HealthSampler(url), MemorySampler(server.pid)
        try:
            _wait_for(url, server)
            health.start()
            memory.start()
            out = asyncio.run(_drive(url, plan, clients))
        finally:
            health.stop()
            memory.stop()
            server.terminate()
            server.wait(timeout=30)
        out.update(health.figures())
        out.update(memory.figures())
        out.update(_payments(settings, plan["dataset"]))
        _require(out, timed)
        return out


def _require(out: dict[str, Any], timed: bool = True) -> None:
    """The run fails loudly when what must hold does not (``LoadRequirementsBroken``); the
    /healthz latency bound only when ``timed``."""
    broken = {
        "server errors": out["load_5xx"],
        "attacks accepted": out["load_attacks_accepted"],
        "claims in review decided more than once": out["load_review_decided_twice"],
        "/healthz failures": out["load_healthz_failures"],
        f"/healthz p99 ms at or over {HEALTHZ_P99_MS:.0f}": 0
        if not timed or out["load_healthz_ms_p99"] < HEALTHZ_P99_MS
        else out["load_healthz_ms_p99"],
        f"service peak RSS MB at or over {PEAK_RSS_MB:.0f}": 0
        if 0 < out["load_service_peak_rss_mb"] < PEAK_RSS_MB
        else out["load_service_peak_rss_mb"] or "not measured",
        "invoices accepted twice": out["load_claims_accepted_twice"],
        "invoices never accepted": out["load_invoices_claimed"] - out["load_claims_accepted_once"],
        "double payments": out["load_double_payments"],
        "payments above the total": out["load_paid_above_total"],
        "claims left unsettled": 0 if out["load_settled"] else 1,
        "database and chain disagree": 0 if out["load_reconciliation_consistent"] else 1,
    }
    if failed := {k: v for k, v in broken.items() if v}:
        raise LoadRequirementsBroken(failed, out)


def _setup(settings: Settings, every: int, seed: int) -> dict[str, Any]:
    """Seeds the service's data directory; returns the jobs' material."""
    dataset = _subset(demo_data.generate(seed, "quzhou"), every)
    last = max(inv.issued_at for inv in dataset.invoices).astimezone(demo_data.TZ).date()
    dataset = shifted(dataset, (datetime.now(demo_data.TZ).date() - timedelta(days=1) - last).days)
    dataset = _for_review(dataset, 15)
    services = open_services(settings)
    try:
        api_keys = register_demo_hospitals(services, dataset)
        enrol_demo_citizens(services, dataset)
        signatures = demo_data.sign_invoices(dataset, services.domain)
        stored: list[int] = []
        unstored: list[int] = []
        later: list[tuple[str, list[dict[str, Any]]]] = []
        by_hospital = batch_items(dataset, signatures)
        indexes: dict[str, list[int]] = defaultdict(list)
        for i, inv in enumerate(dataset.invoices):
            indexes[inv.hospital].append(i)
        for hospital, items in by_hospital.items():
            cut = len(items) * 3 // 5
            services.ingest.upload(hospital, items[:cut])
            stored += indexes[hospital][:cut]
            unstored += indexes[hospital][cut:]
            later += [(hospital, items[lo : lo + 20]) for lo in range(cut, len(items), 20)]
        services.anchoring.run_once(force=True)
        with services.sessions() as db:
            rows = rows_by_id(db, [_id(dataset, i) for i in stored])
        qr = [encode_payload(payload_of(services.domain, row)) for row in rows.values()]
        reviewer = services.staff_tokens.issue("load-desk", "payer", "basic")
    finally:
        services.close()
    return {
        "dataset": dataset,
        "api_keys": api_keys,
        "uploads": later,
        "stored": stored,
        "qr": qr,
        "reviewer": {"Authorization": f"Bearer {reviewer}"},
        "wrong_codes": [_wrong_check_code(dataset, i) for i in unstored],
        "max_image_bytes": settings.max_image_bytes,
    }


def _for_review(dataset: demo_data.DemoDataset, nth: int) -> demo_data.DemoDataset:
    """One invoice in ``nth`` with its first line's name changed away from its catalogue
    code (the audit's ``name_mismatch``), so that its claim waits for review: the claims the
    reviewers' decisions race on."""
    invoices = list(dataset.invoices)
    for i in range(0, len(invoices), nth):
        lines = invoices[i].lines
        renamed = replace(lines[0], name="未列入目录的自费项目")
        invoices[i] = replace(invoices[i], lines=(renamed, *lines[1:]))
    return replace(dataset, invoices=tuple(invoices))


def _wrong_check_code(dataset: demo_data.DemoDataset, i: int) -> tuple[dict[str, Any], str]:
    """A typed verification and a fiscal pointer QR of invoice ``i`` with a wrong check code
    (as someone walking bill numbers sends them); the bill is not among those verified."""
    inv = dataset.invoices[i]
    day = inv.issued_at.astimezone(demo_data.TZ).date()
    typed = {
        "bill_code": inv.bill_code,
        "bill_number": inv.bill_number,
        "check_code": WRONG_CHECK_CODE,
        "amount_fen": inv.total,
        "issued_on": day.isoformat(),
    }
    elements = [inv.bill_code, inv.bill_number, WRONG_CHECK_CODE]
    elements += [f"{inv.total // 100}.{inv.total % 100:02d}", day.strftime("%Y%m%d")]
    return typed, "https://pjcy.zj.gov.cn/check?d=" + "_".join(elements)


def pixel_bomb(width: int = 39_000_000, height: int = 1) -> bytes:
    """A valid greyscale PNG of ``width`` x ``height`` black pixels: about 40 KB that a decoder
    which trusts the header expands to ``width * height`` bytes and more."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    packer = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte 0, then the row's pixels
    pixels = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


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
    return invoice_id(inv.hospital, inv.bill_code, inv.bill_number)


async def _drive(url: str, plan: dict[str, Any], clients: int) -> dict[str, Any]:
    dataset = plan["dataset"]
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    attacker_transport = httpx.AsyncHTTPTransport(limits=limits, local_address=ATTACKER)
    async with (
        httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http,
        httpx.AsyncClient(base_url=url, timeout=120, transport=attacker_transport) as attacker,
    ):
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
        jobs += _attacks(plan, next(iter(tokens.values())), len(claims))
        rng.shuffle(jobs)
        queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        for job in jobs:
            queue.put_nowait(job)
        results: list[tuple[str, int, float, str]] = []
        accepted_attacks: list[str] = []
        raced: set[str] = set()

        async def send(kind: str, request: dict[str, Any]) -> httpx.Response | None:
            started = time.perf_counter()
            response: httpx.Response | None = None
            try:
                if "declared_length" in request:
                    status = await _declared_too_long(url, request)
                else:
                    response = await (attacker if kind.startswith("attack") else http).request(
                        request.get("method", "POST"),
                        request["url"],
                        headers=request.get("headers"),
                        json=request.get("json"),
                        content=request.get("content"),
                        params=request.get("params"),
                    )
                    status = response.status_code
            except httpx.TransportError:
                status = 0  # the connection failed: counted apart, never taken as an answer
            ms = (time.perf_counter() - started) * 1000
            reference = request.get("reference") or (request.get("json") or {}).get("invoice", "")
            results.append((kind, status, ms, reference))
            if kind.startswith("attack") and response is not None and _accepted(kind, response):
                accepted_attacks.append(kind)
            return response

        async def race(reviewer: dict[str, str]) -> bool:
            """Six decisions at once on a claim in review not raced yet (False: none waits)."""
            search = {"state": "in_review", "limit": 50}
            found = await send(
                "review_search",
                {"method": "GET", "url": "/api/v1/review/claims", "params": search}
                | {"headers": reviewer},
            )
            waiting = [
                c["claim_id"]
                for c in (found.json() if found is not None and found.status_code == 200 else [])
                if c["claim_id"] not in raced
            ]
            if not waiting:
                return False
            claim_id = waiting[0]
            raced.add(claim_id)
            decisions = [
                {"approve": True} if n % 2 == 0 else {"approve": False, "reason": "load: race"}
                for n in range(RACE_DECISIONS)
            ]
            await asyncio.gather(
                *(
                    send(
                        "review",
                        {"url": f"/api/v1/review/{claim_id}", "json": decision}
                        | {"headers": reviewer, "reference": claim_id},
                    )
                    for decision in decisions
                )
            )
            return True

        async def client() -> None:
            while not queue.empty():
                kind, request = queue.get_nowait()
                if kind != "review_race":
                    await send(kind, request)
                elif not await race(request["headers"]) and request["tries"] < 20:
                    # No claim waits for review yet: try again after the others' work.
                    request["tries"] += 1
                    queue.put_nowait((kind, request))
                    await asyncio.sleep(0.1)

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - started
        settled = await _settled(http)
        reconciliation = (await http.get("/api/v1/audit/reconciliation", headers=ADMIN)).json()
    out = _report(results, elapsed, clients, settled, reconciliation, len(plan["stored"]))
    out["load_attacks_accepted"] = len(accepted_attacks)
    wins = Counter(r[3] for r in results if r[0] == "review" and r[1] == 200)
    out["load_review_claims_raced"] = len(raced)
    out["load_review_decided_twice"] = sum(1 for n in wins.values() if n > 1)
    return out


def _attacks(
    plan: dict[str, Any], citizen_token: str, claims: int
) -> list[tuple[str, dict[str, Any]]]:
    """The hostile requests mixed in, in proportion to the claims (a few at least of each)."""
    jobs: list[tuple[str, dict[str, Any]]] = []
    walks = plan["wrong_codes"][: max(2, claims // 10)]
    for typed, pointer in walks:
        jobs.append(("attack_wrong_code_typed", {"url": "/api/v1/verify", "json": typed}))
        jobs.append(
            ("attack_wrong_code_pointer", {"url": "/api/v1/verify", "json": {"qr_text": pointer}})
        )
    citizen = {"Authorization": f"Bearer {citizen_token}"}
    bomb = pixel_bomb()
    oversized = plan["max_image_bytes"] + 1
    png = {"Content-Type": "image/png"}
    for _ in range(max(2, claims // 50)):
        jobs.append(
            ("attack_bomb_verify", {"url": "/api/v1/verify/image", "content": bomb, "headers": png})
        )
        jobs.append(
            (
                "attack_bomb_claim",
                {"url": "/api/v1/claims/photo", "content": bomb, "headers": png | citizen},
            )
        )
    for _ in range(max(1, claims // 200)):
        jobs.append(
            (
                "attack_oversized_verify",
                {"url": "/api/v1/verify/image", "declared_length": oversized, "headers": png},
            )
        )
        jobs.append(
            (
                "attack_oversized_claim",
                {
                    "url": "/api/v1/claims/photo",
                    "declared_length": oversized,
                    "headers": png | citizen,
                },
            )
        )
    for _ in range(max(2, claims // 25)):
        jobs.append(("review_race", {"headers": plan["reviewer"], "tries": 0}))
    return jobs


async def _declared_too_long(url: str, request: dict[str, Any]) -> int:
    """Declares a body of ``declared_length`` bytes, sends its first 64 KiB and reads the
    answer's status (0 when the connection failed first): an attacker does not wait to send
    the rest, and the service must not wait for it."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port), local_addr=(ATTACKER, 0))
    try:
        head = [f"POST {request['url']} HTTP/1.1", f"Host: {host}:{port}"]
        head += [f"{k}: {v}" for k, v in request["headers"].items()]
        head += [f"Content-Length: {request['declared_length']}", "", ""]
        writer.write("\r\n".join(head).encode() + b"\x89PNG\r\n\x1a\n" + bytes(64 * 1024))
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 120)
        return int(status.split()[1])
    except (OSError, TimeoutError, ValueError, IndexError):
        return 0
    finally:
        writer.close()


def _accepted(kind: str, response: httpx.Response) -> bool:
    """Whether an attack got what it wanted: a valid verdict for a wrong check code, or any
    success for a hostile image (a refusal with 4xx is the expected answer)."""
    if not 200 <= response.status_code < 300:
        return False
    if kind.startswith("attack_wrong_code"):
        return bool(response.json().get("valid"))
    return True


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
        "load_connection_failures": sum(1 for _, status, _, _ in results if status == 0),
    }
    for kind in sorted({r[0] for r in results}):
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


class _Sampler:
    """A daemon thread calling ``sample`` every ``every`` seconds until stopped."""

    def __init__(self, every: float) -> None:
        self._every = every
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=60)

    def _run(self) -> None:
        while not self._stopped.is_set():
            started = time.monotonic()
            self.sample()
            self._stopped.wait(max(0.0, self._every - (time.monotonic() - started)))

    def sample(self) -> None:
        raise NotImplementedError


class HealthSampler(_Sampler):
    """``GET /healthz`` every 50 ms on its own connection and thread, as a load balancer's
    health check sees the service while the clients work."""

    def __init__(self, url: str, every: float = 0.05) -> None:
        super().__init__(every)
        self._http = httpx.Client(base_url=url, timeout=60)
        self.samples: list[tuple[float, int]] = []

    def sample(self) -> None:
        started = time.perf_counter()
        try:
            status = self._http.get("/healthz").status_code
        except httpx.HTTPError:
            status = 0
        self.samples.append(((time.perf_counter() - started) * 1000, status))

    def stop(self) -> None:
        super().stop()
        self._http.close()

    def figures(self) -> dict[str, Any]:
        ms = sorted(s[0] for s in self.samples)
        if not ms:
            return {
                "load_healthz_samples": 0,
                "load_healthz_ms_p99": -1,
                "load_healthz_failures": 1,
            }
        return {
            "load_healthz_samples": len(ms),
            "load_healthz_ms_p50": round(statistics.median(ms), 1),
            "load_healthz_ms_p99": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 1),
            "load_healthz_ms_max": round(ms[-1], 1),
            "load_healthz_failures": sum(1 for _, status in self.samples if status != 200),
        }


class MemorySampler(_Sampler):
    """The resident memory of the service's process and all its descendants (worker pools,
    fork servers), summed from ``/proc/<pid>/status`` ``VmRSS`` every 100 ms; the peak."""

    def __init__(self, pid: int, every: float = 0.1) -> None:
        super().__init__(every)
        self._pid = pid
        self.peak_kib = 0
        self.processes = 0

    def sample(self) -> None:
        tree = _descendants(self._pid)
        self.peak_kib = max(self.peak_kib, sum(_rss_kib(pid) for pid in tree))
        self.processes = max(self.processes, len(tree))

    def figures(self) -> dict[str, Any]:
        return {
            "load_service_peak_rss_mb": round(self.peak_kib / 1024, 1),
            "load_service_processes_max": self.processes,
        }


def _descendants(root: int) -> list[int]:
    """``root`` and every process below it, from the parent ids in ``/proc/*/stat``."""
    children: dict[int, list[int]] = defaultdict(list)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended meanwhile
        children[int(fields[1])].append(int(stat.parent.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += children.get(pid, [])
    return tree


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


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
