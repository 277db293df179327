"""Fixtures for the service: a fresh database and embedded ledger, a registered hospital with its
own key (held by the test as a hospital would), and invoice builders."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient

from api.adapters.hospital_files import sign_item
from api.app import create_app
from api.bootstrap import Services, open_services
from api.settings import Settings
from chain.model import HospitalLevel
from tests.conftest import fresh_database
from verifier.canonical import patient_commitment

HOSPITAL = "H33080200001"
OTHER_HOSPITAL = "H33082200007"
KEY_FROM = datetime(2024, 1, 1, tzinfo=UTC)


def patient(n: int = 1) -> dict[str, str]:
    return {
        "id_number": f"33080219900101{n:03d}X"[-18:],
        "name": f"患者{n}",
        "salt": hashlib.sha256(b"salt%d" % n).digest()[:16].hex(),
    }


def invoice_json(
    n: int, hospital: str = HOSPITAL, pat: dict[str, str] | None = None, **changes: Any
) -> dict[str, Any]:
    """A valid outpatient invoice (three lines, 64.50 yuan), number ``n``."""
    pat = pat or patient(n)
    data: dict[str, Any] = {
        "bill_code": "33082025",
        "bill_number": f"{n:010d}",
        "check_code": f"c{n:05d}"[-6:],
        "hospital": hospital,
        "issued_at": "2025-03-01T10:00:00+08:00",
        "visit_type": "outpatient",
        "department": "内科",
        "diagnoses": ["J06.9"],
        "patient_commitment": "0x"
        + patient_commitment(pat["id_number"], bytes.fromhex(pat["salt"])).hex(),
        "total": 6450,
        "insurance_paid": 0,
        "patient_paid": 6450,
        "lines": [
            {
                "code": "XJ01CAA040A001",
                "name": "阿莫西林胶囊",
                "class": "A",
                "unit_price": 1250,
                "quantity_milli": 2000,
                "amount": 2500,
                "department": "内科",
                "time": "2025-03-01T09:30:00+08:00",
            },
            {
                "code": "S001102000010",
                "name": "普通门诊诊查费",
                "class": "A",
                "unit_price": 1000,
                "quantity_milli": 1000,
                "amount": 1000,
                "department": "内科",
                "time": "2025-03-01T09:00:00+08:00",
            },
            {
                "code": "S250101001000",
                "name": "血常规",
                "class": "B",
                "unit_price": 2950,
                "quantity_milli": 1000,
                "amount": 2950,
                "department": "检验科",
                "time": "2025-03-01T09:10:00+08:00",
            },
        ],
    }
    data.update(changes)
    return data


@dataclass
class Hospital:
    code: str
    key: LocalAccount
    api_key: str


@dataclass
class World:
    services: Services
    client: TestClient
    hospital: Hospital
    other: Hospital

    def item(
        self, n: int, signer: LocalAccount | None = None, hospital: str = HOSPITAL, **changes: Any
    ) -> dict[str, Any]:
        """A signed batch item; ``changes`` alter the invoice before signing."""
        pat = patient(n)
        unsigned = {"invoice": invoice_json(n, hospital, pat, **changes), "patient": pat}
        return sign_item(unsigned, (signer or self.hospital.key).key, self.services.domain)

    def read(self, path: str, **kwargs: Any) -> Any:
        """A GET as the issuing hospital (invoices are read by their hospital, staff and
        their patient)."""
        return self.client.get(path, headers={"X-API-Key": self.hospital.api_key}, **kwargs)

    def upload(self, items: list[dict[str, Any]], api_key: str | None = None) -> dict[str, Any]:
        response = self.client.post(
            "/api/v1/invoices/batches",
            headers={"X-API-Key": api_key or self.hospital.api_key},
            json={"items": items},
        )
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]


def tampered(item: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of a signed item whose invoice was changed after signing."""
    out = copy.deepcopy(item)
    out["invoice"].update(changes)
    return out


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str | None:
    """Each service test runs on SQLite (the default) and on a real PostgreSQL."""
    if request.param == "sqlite":
        return None
    return fresh_database(request.getfixturevalue("postgres_server"))


@pytest.fixture
def world(tmp_path: Path, database_url: str | None) -> Iterator[World]:
    settings = Settings(
        data_dir=tmp_path,
        anchor_batch_size=4,
        anchor_interval_ms=0,
        payers=("basic",),
        database_url=database_url,
    )
    services = open_services(settings)
    keys = (Account.create(), Account.create())
    api_keys = [
        services.hospitals.register(code, name, HospitalLevel.TERTIARY, key.address, KEY_FROM)
        for code, name, key in (
            (HOSPITAL, "衢州市人民医院", keys[0]),
            (OTHER_HOSPITAL, "江山市人民医院", keys[1]),
        )
    ]
    with TestClient(create_app(settings, services, background=False)) as client:
        yield World(
            services,
            client,
            Hospital(HOSPITAL, keys[0], api_keys[0]),
            Hospital(OTHER_HOSPITAL, keys[1], api_keys[1]),
        )
