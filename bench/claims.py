"""Claims benchmark: Quzhou's yearly 40,000 claims, verified, adjudicated and settled.

Setup (not timed): the Quzhou-shaped dataset ingested and anchored as in ``bench.ingest``,
its citizens enrolled (without passwords: sign-in is not what is measured). Timed: every claim
through ``ClaimFlow.submit_many`` in batches of 1,000, as an office's batch or a payer's
import arrives (each claim gets the pipeline's eight-step verification, the patient check,
duplicate and basic-first checks, the policy's adjudication, the audit rules; each batch is
one database transaction), and the settlement loop that pays approved claims on the embedded
ledger, run after every batch as the service's loop would. The
claims: basic insurance for every invoice, then the commercial insurer for every invoice, then
critical illness for the largest, until the count is reached (40,000 by default). The claim
clock is 2025-12-31, within every invoice's deadline.
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from api.bootstrap import open_services
from api.db import models
from api.demo import data as demo_data
from api.demo.seed import batch_items, register_demo_hospitals
from api.flows.claim import ClaimRequest
from api.identity.citizens import AlreadyEnrolled
from api.refusals import Refused
from api.settings import Settings

CLOCK = datetime(2025, 12, 31, 12, tzinfo=UTC)
BATCH = 1000  # claims per ``submit_many`` call, and per settlement run


def run(claims: int = 40_000, preset: str = "quzhou") -> dict[str, Any]:
    dataset = demo_data.generate(2025, preset)
    with tempfile.TemporaryDirectory() as tmp:
        services = open_services(Settings(data_dir=Path(tmp)))
        register_demo_hospitals(services, dataset)
        signatures = demo_data.sign_invoices(dataset, services.domain)
        for hospital, items in batch_items(dataset, signatures).items():
            for lo in range(0, len(items), 1000):
                services.ingest.upload(hospital, items[lo : lo + 1000])
                services.anchoring.run_once()
        services.anchoring.run_once(force=True)
        for citizen in {dataset.citizen_of(i) for i in range(len(dataset.invoices))}:
            with contextlib.suppress(AlreadyEnrolled):
                services.citizens.enrol(
                    citizen.id_number, citizen.name, citizen.sex, citizen.birth_date, None
                )
        with services.sessions() as db:
            citizens = {c.id_number_hash: c for c in db.scalars(select(models.Citizen))}
            invoices = [
                (f"{r.bill_code}-{r.bill_number}", r.patient_id_hash, r.total)
                for r in db.scalars(select(models.Invoice))
            ]
        by_size = sorted(invoices, key=lambda inv: -inv[2])
        plan = (
            [(i, "basic") for i in invoices]
            + [(i, "commercial") for i in invoices]
            + [(i, "critical") for i in by_size]
        )[:claims]
        services.claim.clock = lambda: CLOCK
        outcomes: dict[str, int] = {}
        batch_ms: list[float] = []
        start = time.perf_counter()
        for lo in range(0, len(plan), BATCH):
            t = time.perf_counter()
            requests = [
                ClaimRequest(citizens[patient], reference, payer, "office")  # type: ignore[index]
                for (reference, patient, _), payer in plan[lo : lo + BATCH]
            ]
            for outcome in services.claim.submit_many(requests):
                key = outcome.code if isinstance(outcome, Refused) else outcome.state
                outcomes[key] = outcomes.get(key, 0) + 1
            batch_ms.append((time.perf_counter() - t) * 1000)
            services.settle.run()
        elapsed = time.perf_counter() - start
        with services.sessions() as db:
            paid = db.scalars(select(models.Payment)).all()
            txs = {p.tx_hash for p in paid}
        with services.ledger.exclusive() as parts:
            receipts = [parts.session.backend.receipt(tx) for tx in txs]
        gas = sum(r.gas_used for r in receipts if r is not None)
        services.close()
    out: dict[str, Any] = {
        "claims_count": len(plan),
        "claims_seconds": round(elapsed, 1),
        "claims_per_second": round(len(plan) / elapsed, 1),
        "claims_submit_ms_mean": round(statistics.mean(batch_ms) / BATCH, 2),
        "claims_paid": len(paid),
        "gas_per_settled_claim": round(gas / len(paid)) if paid else None,
    }
    out.update({f"claims_outcome_{k}": v for k, v in sorted(outcomes.items())})
    if len(plan) == 40_000:
        out["claims_40k_seconds"] = out["claims_seconds"]
    return out
