"""Ingest benchmark: the Quzhou-shaped dataset through the upload path.

132 hospitals, 15,605 invoices, 1,332,000 detail lines, generated and signed by the hospitals'
demo keys beforehand (not timed). Timed: each hospital's batches through the ingest service
(JSON parsing and validation, detail trees, record hashes, signature recovery on both cores,
registry checks, storage with lines and outbox in SQLite), the sequencer draining the outbox
into the log, and the checkpoints anchored on the embedded ledger, as the service's background
loop does between batches. In process: HTTP framing is not counted.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from api.bootstrap import open_services
from api.demo import data as demo_data
from api.demo.seed import batch_items, register_demo_hospitals
from api.settings import Settings

BATCH = 1000


def run(preset: str = "quzhou", seed: int = 2025) -> dict[str, Any]:
    out: dict[str, Any] = {}
    t = time.perf_counter()
    dataset = demo_data.generate(seed, preset)
    out["ingest_generate_seconds"] = round(time.perf_counter() - t, 2)
    with tempfile.TemporaryDirectory() as tmp:
        services = open_services(Settings(data_dir=Path(tmp), payers=("basic",)))
        register_demo_hospitals(services, dataset)
        t = time.perf_counter()
        signatures = demo_data.sign_invoices(dataset, services.domain)
        out["ingest_sign_seconds_untimed"] = round(time.perf_counter() - t, 2)
        batches = batch_items(dataset, signatures)

        start = time.perf_counter()
        upload_seconds = 0.0
        accepted = 0
        for hospital, items in batches.items():
            for lo in range(0, len(items), BATCH):
                t = time.perf_counter()
                result = services.ingest.upload(hospital, items[lo : lo + BATCH])
                upload_seconds += time.perf_counter() - t
                if result.refusals:
                    raise RuntimeError(f"refused: {result.refusals[0]}")
                accepted += len(result.receipts)
                services.anchoring.run_once()
        services.anchoring.run_once(force=True)
        elapsed = time.perf_counter() - start
        latest = services.ledger.anchored()
        assert latest is not None and latest.size == accepted == len(dataset.invoices)
        services.close()
    out["ingest_invoices"] = len(dataset.invoices)
    out["ingest_lines"] = dataset.line_count
    out["ingest_quzhou_seconds"] = round(elapsed, 2)
    out["ingest_upload_seconds"] = round(upload_seconds, 2)
    out["ingest_anchor_seconds"] = round(elapsed - upload_seconds, 2)
    out["ingest_lines_per_second"] = round(dataset.line_count / elapsed)
    return out
