"""200 simultaneous claims on 20 invoices over real HTTP, against several API worker processes
on PostgreSQL and a JSON-RPC ledger (anvil): exactly 20 claims, 180 refusals, and the chain
agrees with the database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from api.bootstrap import open_services
from api.db import models
from api.demo import data as demo_data
from api.demo.seed import DEMO_CITIZEN_PASSWORD, seed_demo
from api.settings import Settings
from tests.conftest import ROOT, fresh_database
from verifier.canonical import invoice_id

WORKERS = 3


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_simultaneous_claims_over_http_on_several_workers(
    tmp_path: Path, anvil_url: str, postgres_server: str
) -> None:
    env = {
        "ZEROCLAIM_DATA_DIR": str(tmp_path),
        "ZEROCLAIM_DATABASE_URL": fresh_database(postgres_server),
        "ZEROCLAIM_LEDGER_BACKEND": "rpc",
        "ZEROCLAIM_RPC_URL": anvil_url,
        "ZEROCLAIM_ANCHOR_INTERVAL_MS": "0",
        "ZEROCLAIM_VERIFY_PER_MINUTE": "100000",
        "ZEROCLAIM_VERIFY_BURST": "100000",
    }
    # Bootstrap once (contract, roles, schema, demo data); the workers attach to it.
    settings = Settings(**{k.removeprefix("ZEROCLAIM_").lower(): v for k, v in env.items()})
    services = open_services(settings)
    assert seed_demo(services) > 0
    services.close()

    dataset = demo_data.generate(2025, "small")
    chosen = sorted(range(len(dataset.invoices)), key=lambda i: -dataset.invoices[i].total)[:20]
    port = _port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "api.app:app_from_environment",
            "--factory",
            "--workers",
            str(WORKERS),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            assert time.monotonic() < deadline, "workers did not start"
            time.sleep(0.3)
        with httpx.Client(base_url=url, timeout=120) as client:
            tokens = {}
            for i in chosen:
                citizen = dataset.citizen_of(i)
                if citizen.id_number not in tokens:
                    tokens[citizen.id_number] = client.post(
                        "/api/v1/citizens/session",
                        json={"id_number": citizen.id_number, "password": DEMO_CITIZEN_PASSWORD},
                    ).json()["token"]
            requests = [(i, tokens[dataset.citizen_of(i).id_number]) for i in chosen] * 10

            def claim(job: tuple[int, str]) -> tuple[int, int, str | None]:
                i, token = job
                inv = dataset.invoices[i]
                with httpx.Client(base_url=url, timeout=120) as c:
                    r = c.post(
                        "/api/v1/claims",
                        headers={"Authorization": f"Bearer {token}"},
                        json={"invoice": f"{inv.bill_code}-{inv.bill_number}"},
                    )
                first = r.json()["error"].get("first_claim") if r.status_code == 409 else None
                return i, r.status_code, first

            with ThreadPoolExecutor(max_workers=40) as pool:
                results = list(pool.map(claim, requests))
        codes = [code for _, code, _ in results]
        assert codes.count(201) == 20, sorted(set(codes))
        assert codes.count(409) == 180
    finally:
        server.terminate()
        server.wait(timeout=30)

    services = open_services(settings)
    try:
        with services.sessions() as db:
            claims_by_invoice = {c.invoice_id: c for c in db.scalars(select(models.Claim))}
        assert len(claims_by_invoice) == 20

        def id_of(i: int) -> bytes:
            inv = dataset.invoices[i]
            return invoice_id(inv.hospital, inv.bill_code, inv.bill_number)

        ids = {id_of(i): i for i in chosen}
        assert set(claims_by_invoice) == set(ids)
        for i, code, first in results:
            key = id_of(i)
            if code == 409:
                assert first == claims_by_invoice[key].id
        services.settle.run()
        with services.sessions() as db:
            claims = list(db.scalars(select(models.Claim)))
            payments = {p.claim_id: p for p in db.scalars(select(models.Payment))}
        basic = services.ledger.payer_address("basic")
        for claim in claims:
            state = services.ledger.claim_state(claim.invoice_id)
            if claim.state == "paid":
                assert state.paid == claim.amount_fen == payments[claim.id].amount_fen
            elif claim.state == "in_review":
                assert state.locked_by == basic and state.paid == 0
            else:
                assert claim.state == "rejected" and state.paid == 0
    finally:
        services.close()
