"""Demo data for ``make run`` and ``zeroclaim demo generate``: the Quzhou-shaped synthetic
dataset of ``api.demo.data`` pushed through the real upload path.

Demo mode registers each demo hospital with its demo key and signs on its behalf; a real
hospital keeps its own key and signs at its billing office (``zeroclaim hospital sign``).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from api.demo import data as demo_data

if TYPE_CHECKING:
    from api.adapters.ledger import LedgerGateway
    from api.adapters.registry import RegistryCache
    from api.flows.anchor import AnchorFlow
    from api.flows.upload import UploadFlow
    from api.identity.citizens import Citizens
    from api.identity.hospitals import Hospitals
    from api.settings import Settings
    from verifier.canonical import Domain


class DemoServices(Protocol):
    """What seeding uses of the service (``api.bootstrap.Services`` has it all): the real
    upload, anchoring, registration and enrolment paths."""

    @property
    def settings(self) -> Settings: ...
    @property
    def domain(self) -> Domain: ...
    @property
    def registry(self) -> RegistryCache: ...
    @property
    def ledger(self) -> LedgerGateway: ...
    @property
    def hospitals(self) -> Hospitals: ...
    @property
    def citizens(self) -> Citizens: ...
    @property
    def ingest(self) -> UploadFlow: ...
    @property
    def anchoring(self) -> AnchorFlow: ...


KEYS_VALID_FROM = datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=8)))
API_KEYS_FILE = "demo-api-keys.json"
CITIZENS_FILE = "demo-citizens.json"
#: Every demo citizen signs in with this password (development only).
DEMO_CITIZEN_PASSWORD = "zeroclaim-demo"


def enrol_demo_citizens(services: DemoServices, dataset: demo_data.DemoDataset) -> list[str]:
    """Enrols the dataset's citizens who have invoices; returns their (synthetic) ID numbers."""
    from api.identity.citizens import AlreadyEnrolled

    patients = sorted({p.citizen for p in dataset.patients})
    enrolled = []
    for index in patients:
        citizen = dataset.citizens[index]
        with contextlib.suppress(AlreadyEnrolled):
            services.citizens.enrol(
                citizen.id_number,
                citizen.name,
                citizen.sex,
                citizen.birth_date,
                DEMO_CITIZEN_PASSWORD,
            )
        enrolled.append(citizen.id_number)
    return enrolled


def batch_items(
    dataset: demo_data.DemoDataset, signatures: list[bytes] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Upload items per hospital code (signed when ``signatures`` are given)."""
    items: dict[str, list[dict[str, Any]]] = {}
    for index, invoice in enumerate(dataset.invoices):
        citizen = dataset.citizen_of(index)
        item: dict[str, Any] = {
            "invoice": demo_data.invoice_json(invoice),
            "patient": {
                "id_number": citizen.id_number,
                "name": citizen.name,
                "salt": dataset.patients[index].salt.hex(),
            },
        }
        if signatures is not None:
            item["signature"] = "0x" + signatures[index].hex()
        items.setdefault(invoice.hospital, []).append(item)
    return items


def register_demo_hospitals(
    services: DemoServices, dataset: demo_data.DemoDataset
) -> dict[str, str]:
    """Registers every demo hospital not yet registered; returns the new API keys by code."""
    services.registry.refresh()
    keys = {}
    for hospital in dataset.hospitals:
        if services.registry.hospital(hospital.code) is None:
            keys[hospital.code] = services.hospitals.register(
                hospital.code,
                hospital.name,
                hospital.level,
                hospital.address,
                KEYS_VALID_FROM,
            )
    return keys


def shifted(dataset: demo_data.DemoDataset, days: int) -> demo_data.DemoDataset:
    """The dataset with every date and time moved by ``days`` (birth dates too, so ages stay):
    the generator's fixed year, brought to where a demo needs it."""
    delta = timedelta(days=days)
    invoices = tuple(
        replace(
            inv,
            issued_at=inv.issued_at + delta,
            admitted_on=inv.admitted_on + delta if inv.admitted_on else None,
            discharged_on=inv.discharged_on + delta if inv.discharged_on else None,
            lines=tuple(replace(line, time=line.time + delta) for line in inv.lines),
        )
        for inv in dataset.invoices
    )
    citizens = tuple(replace(c, birth_date=c.birth_date + delta) for c in dataset.citizens)
    return replace(dataset, invoices=invoices, citizens=citizens)


def seed_demo(
    services: DemoServices, preset: str = "small", seed: int = 2025, end: date | None = None
) -> int:
    """Uploads the demo dataset on a fresh service; returns the invoices added (0 when the log
    already holds data). The demo API keys are written to ``data_dir/demo-api-keys.json``.

    ``end`` (default: yesterday) is the day the last invoice is moved to, so that a demo's
    invoices are recent enough to claim; the generator itself issues them in a fixed year.
    """
    if services.settings.environment != "development":
        raise ValueError(
            "demo data only in development: its hospital keys are public and its citizens "
            "share one known password"
        )
    if services.ledger.log_size():
        return 0
    dataset = demo_data.generate(seed, preset)
    last = max(inv.issued_at for inv in dataset.invoices).astimezone(demo_data.TZ).date()
    end = end or (datetime.now(demo_data.TZ).date() - timedelta(days=1))
    if end > last:
        dataset = shifted(dataset, (end - last).days)
    api_keys = register_demo_hospitals(services, dataset)
    keys_file = services.settings.data_dir / API_KEYS_FILE
    known = json.loads(keys_file.read_text()) if keys_file.exists() else {}
    keys_file.write_text(json.dumps({**known, **api_keys}, indent=1))
    keys_file.chmod(0o600)
    citizens_file = services.settings.data_dir / CITIZENS_FILE
    citizens_file.write_text(
        json.dumps(
            {
                "password": DEMO_CITIZEN_PASSWORD,
                "id_numbers": enrol_demo_citizens(services, dataset),
            },
            indent=1,
        )
    )
    citizens_file.chmod(0o600)
    signatures = demo_data.sign_invoices(dataset, services.domain)
    added = 0
    for hospital, items in batch_items(dataset, signatures).items():
        for start in range(0, len(items), 1000):
            result = services.ingest.upload(hospital, items[start : start + 1000])
            if result.refusals:
                raise RuntimeError(f"demo invoice refused: {result.refusals[0]}")
            added += len(result.receipts)
        services.anchoring.run_once()  # as the background loop would between uploads
    services.anchoring.run_once(force=True)
    return added


def write_dataset(dataset: demo_data.DemoDataset, out: Path) -> dict[str, Any]:
    """Writes unsigned per-hospital batches, the hospitals and their demo keys to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "batches").mkdir(exist_ok=True)
    for code, items in batch_items(dataset).items():
        (out / "batches" / f"{code}.json").write_text(
            json.dumps({"items": items}, ensure_ascii=False)
        )
    (out / "hospitals.json").write_text(
        json.dumps(
            [
                {
                    "code": h.code,
                    "name": h.name,
                    "district": h.district,
                    "level": h.level.name.lower(),
                    "address": h.address,
                }
                for h in dataset.hospitals
            ],
            ensure_ascii=False,
            indent=1,
        )
    )
    keys = out / "demo-hospital-keys.json"
    keys.write_text(
        json.dumps({h.code: "0x" + h.private_key.hex() for h in dataset.hospitals}, indent=1)
    )
    keys.chmod(0o600)
    return {
        "preset": dataset.preset,
        "seed": dataset.seed,
        "hospitals": len(dataset.hospitals),
        "invoices": len(dataset.invoices),
        "lines": dataset.line_count,
        "total_fen": dataset.total_fen,
        "out": str(out),
    }
