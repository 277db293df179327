"""Bad input, generated from the OpenAPI schema by schemathesis (a bounded number of examples
per operation, on the demo data): never a server error, and every answer the schema describes
matches it. Requests go in process through the ASGI app (no network)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from eth_account import Account
from fastapi.testclient import TestClient
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from api.app import create_app
from api.bootstrap import open_services
from api.demo import data as demo_data
from api.demo.seed import DEMO_CITIZEN_PASSWORD, seed_demo
from api.settings import Settings
from chain.model import HospitalLevel
from tests.api.conftest import World
from tests.conftest import fresh_database

schema = schemathesis.pytest.from_fixture("api_schema")


IDENTITIES: list[dict[str, str]] = []


@pytest.fixture(scope="module")
def api_schema(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    database_url = None  # SQLite; PostgreSQL in the second pass of `make test`
    if os.environ.get("ZEROCLAIM_TEST_DATABASE") == "postgresql":
        database_url = fresh_database(request.getfixturevalue("postgres_server"))
    settings = Settings(
        data_dir=tmp,
        anchor_interval_ms=0,
        verify_per_minute=100_000,
        verify_burst=100_000,
        database_url=database_url,
    )
    services = open_services(settings)
    seed_demo(services, end=date(2025, 1, 1))
    app = create_app(settings, services, background=False)
    app.state.services = services  # the lifespan is not run by the ASGI transport
    hospital_key = services.hospitals.register(
        "FUZZ01",
        "测试医院",
        HospitalLevel.PRIMARY,
        Account.create().address,
        datetime(2024, 1, 1, tzinfo=UTC),
    )
    citizen = demo_data.generate(2025, "small").citizen_of(0)
    session = TestClient(app).post(
        "/api/v1/citizens/session",
        json={"id_number": citizen.id_number, "password": DEMO_CITIZEN_PASSWORD},
    )
    assert session.status_code == 200, session.text
    # Each case is sent as the authority (with a hospital's key) and as a citizen: most
    # operations need one of them, and a 401 would test little.
    IDENTITIES[:] = [
        {"Authorization": "Bearer dev-admin-token", "X-API-Key": hospital_key},
        {"Authorization": f"Bearer {session.json()['token']}", "X-API-Key": hospital_key},
    ]
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    services.close()


@schema.parametrize()
@hypothesis_settings(
    max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)
def test_no_server_error_and_answers_match_the_schema(case: Any) -> None:
    for headers in IDENTITIES:
        case.call_and_validate(
            headers=headers, checks=[not_a_server_error, response_schema_conformance]
        )


def test_what_fuzzing_found_is_refused_as_bad_input(world: World) -> None:
    """Each of these was a 500 or a 502 before schemathesis found it."""
    admin = {"Authorization": "Bearer dev-admin-token"}
    registration = {
        "code": "H77",
        "name": "某医院",
        "level": "primary",
        "signer": "0x" + "00" * 20,
        "valid_from": "2024-01-01T00:00:00Z",
    }
    zero = world.client.post("/api/v1/admin/hospitals", headers=admin, json=registration)
    assert zero.status_code == 422  # the contract refuses the zero signer: the request's fault
    assert zero.json()["error"]["code"] == "ledger_invalid_signer"
    early = {
        **registration,
        "signer": Account.create().address,
        "valid_from": "1969-01-01T00:00:00Z",
    }
    response = world.client.post("/api/v1/admin/hospitals", headers=admin, json=early)
    assert response.status_code == 422
    assert "1970" in response.json()["error"]["problems"][0]["reason"]
    huge = world.client.get("/api/v1/checkpoints/consistency", params={"old": 1, "new": 2**64})
    assert huge.status_code == 422
