"""The service that ``make run`` starts: health, checkpoints from the chain, consistency proofs
that verify against the anchored roots."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError

from api.app import create_app
from api.demo import seed_demo
from api.services import open_services
from api.settings import Settings
from chain import merkle


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path, anchor_batch_size=50, payers=("basic",))
    services = open_services(settings)
    assert seed_demo(services, invoices=120) == 120
    with TestClient(create_app(settings, services)) as c:
        yield c


def test_health_reports_the_ledger(client: TestClient) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert body["ledger_backend"] == "embedded"
    assert body["log_size"] == body["anchored_size"] == 120


def test_checkpoints_and_consistency_proofs_verify(client: TestClient) -> None:
    checkpoints = client.get("/api/v1/checkpoints").json()
    assert [c["size"] for c in checkpoints] == [50, 100, 120]
    old, new = checkpoints[0], checkpoints[2]
    body = client.get("/api/v1/checkpoints/consistency", params={"old": 50, "new": 120}).json()
    merkle.verify_consistency(
        50,
        120,
        [bytes.fromhex(p[2:]) for p in body["proof"]],
        bytes.fromhex(old["root"][2:]),
        bytes.fromhex(new["root"][2:]),
    )
    # A proof between sizes that were never anchored is refused, not invented.
    missing = client.get("/api/v1/checkpoints/consistency", params={"old": 7, "new": 120})
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "checkpoint_not_found"
    assert missing.json()["error"]["sizes"] == [7]
    backwards = client.get("/api/v1/checkpoints/consistency", params={"old": 120, "new": 50})
    assert backwards.status_code == 422


def test_demo_seed_is_idempotent(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, payers=("basic",))
    services = open_services(settings)
    try:
        assert seed_demo(services, invoices=10) == 10
        assert seed_demo(services, invoices=10) == 0
        assert services.log.size == 10
    finally:
        services.close()


def test_settings_refuse_development_secrets_in_production(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="KEYSTORE_PASSWORD"):
        Settings(environment="production", data_dir=tmp_path)
    with pytest.raises(ValidationError, match="RPC_URL"):
        Settings(ledger_backend="rpc", data_dir=tmp_path)
    unset = "ADMIN_TOKEN, ZEROCLAIM_HMAC_KEY, ZEROCLAIM_ENCRYPTION_KEY"
    with pytest.raises(ValidationError, match=unset):
        Settings(
            environment="production", keystore_password=SecretStr("long-secret"), data_dir=tmp_path
        )
    ok = Settings(
        environment="production",
        keystore_password=SecretStr("long-secret"),
        hmac_key=SecretStr("k" * 40),
        encryption_key=SecretStr("ab" * 32),
        admin_token=SecretStr("a-real-admin-token"),
        data_dir=tmp_path,
    )
    assert ok.ledger_config().kdf_iterations is None  # production keystores use scrypt
