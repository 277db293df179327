"""The service that ``make run`` starts: health, demo data through the real upload path,
checkpoints from the chain, consistency proofs that verify against the anchored roots."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError

from api.app import create_app
from api.bootstrap import open_services
from api.demo.seed import seed_demo
from api.settings import Settings
from chain import merkle


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path, anchor_batch_size=25, payers=("basic",))
    services = open_services(settings)
    assert seed_demo(services) == 60
    with TestClient(create_app(settings, services, background=False)) as c:
        yield c


def test_health_reports_the_ledger(client: TestClient) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert body["ledger_backend"] == "embedded"
    assert body["log_size"] == body["anchored_size"] == 60


def test_demo_invoices_are_anchored_and_their_hospitals_have_api_keys(
    client: TestClient, tmp_path: Path
) -> None:
    keys = json.loads((tmp_path / "demo-api-keys.json").read_text())
    assert len(keys) == 6
    checkpoints = client.get("/api/v1/checkpoints").json()
    last = checkpoints[-1]["size"]
    assert last == 60
    with client.app.state.services.sessions() as db:  # type: ignore[attr-defined]
        from sqlalchemy import func, select

        from api.db import models

        pending = db.scalar(
            select(func.count())
            .select_from(models.Invoice)
            .where(models.Invoice.checkpoint_size.is_(None))
        )
    assert pending == 0


def test_checkpoints_and_consistency_proofs_verify(client: TestClient) -> None:
    checkpoints = client.get("/api/v1/checkpoints").json()
    assert len(checkpoints) >= 2
    sizes = [c["size"] for c in checkpoints]
    assert sizes == sorted(sizes)
    old, new = checkpoints[0], checkpoints[-1]
    body = client.get(
        "/api/v1/checkpoints/consistency", params={"old": old["size"], "new": new["size"]}
    ).json()
    merkle.verify_consistency(
        old["size"],
        new["size"],
        [bytes.fromhex(p[2:]) for p in body["proof"]],
        bytes.fromhex(old["root"][2:]),
        bytes.fromhex(new["root"][2:]),
    )
    # A proof between sizes that were never anchored is refused, not invented.
    missing = client.get("/api/v1/checkpoints/consistency", params={"old": 7, "new": 60})
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "checkpoint_not_found"
    assert missing.json()["error"]["sizes"] == [7]
    backwards = client.get(
        "/api/v1/checkpoints/consistency", params={"old": new["size"], "new": old["size"]}
    )
    assert backwards.status_code == 422


def test_demo_seed_is_idempotent(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, payers=("basic",))
    services = open_services(settings)
    try:
        assert seed_demo(services) == 60
        assert seed_demo(services) == 0
        assert services.ledger.log_size() == 60
    finally:
        services.close()


def _production(tmp_path: Path) -> Settings:
    """Production settings with every secret set (none of the development defaults)."""
    return Settings(
        environment="production",
        keystore_password=SecretStr("long-secret"),
        hmac_key=SecretStr("k" * 40),
        encryption_key=SecretStr("ab" * 32),
        admin_token=SecretStr("a-real-admin-token"),
        data_dir=tmp_path,
    )


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
    ok = _production(tmp_path)
    assert ok.ledger_config().kdf_iterations is None  # production keystores use scrypt


def test_demo_data_is_refused_outside_development(tmp_path: Path) -> None:
    settings = _production(tmp_path)
    services = open_services(settings)
    try:
        with pytest.raises(ValueError, match="demo data only in development"):
            seed_demo(services)
        assert services.ledger.log_size() == 0  # nothing of it was written
        assert not (tmp_path / "demo-api-keys.json").exists()
    finally:
        services.close()
