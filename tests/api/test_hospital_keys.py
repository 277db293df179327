"""Finding 5 of issue 11: a stolen hospital key never gets paid. The attack end to end over
HTTP, the issue-time window at upload, and the authority's endpoints that rotate and revoke a
hospital's signing key and its upload API key, each in the audit log."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from api.bootstrap import open_services
from api.db import models
from api.flows.upload import BatchResult
from api.flows.upload_items import Refusal
from api.settings import Settings
from chain import errors
from chain.model import HospitalLevel, InvoiceLeaf, KeyRejection
from chain.sequencer import SettlementRequest
from tests.api.conftest import HOSPITAL, KEY_FROM, World
from verifier.trust_list import load_trust_list

ADMIN = {"Authorization": "Bearer dev-admin-token"}


def _item_result(world: World, item: dict[str, Any]) -> dict[str, Any]:
    (result,) = world.upload([item])["items"]
    return result  # type: ignore[no-any-return]


def _anchor(world: World) -> None:
    world.services.anchoring.run_once(force=True)


def _verify(world: World, invoice_id: str) -> dict[str, Any]:
    text = world.read(f"/api/v1/invoices/{invoice_id}/qr").json()["payload"]
    response = world.client.post("/api/v1/verify", json={"qr_text": text})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _audit(world: World, action: str) -> list[models.AuditEntry]:
    with world.services.sessions() as db:
        return list(db.scalars(select(models.AuditEntry).where(models.AuditEntry.action == action)))


def _settle(world: World, invoice_id: str, amount: int) -> Any:
    """Straight to the contract, as the settlement loop sends it: leaf, proof, signature."""
    services = world.services
    with services.sessions() as db:
        row = db.get(models.Invoice, bytes.fromhex(invoice_id[2:]))
        assert row is not None
        leaf = InvoiceLeaf(row.invoice_id, row.record_hash, row.hospital, row.total)
        request = SettlementRequest("attack", leaf, amount, row.signature)
    (outcome,) = services.ledger.settle("basic", [request])
    return outcome


def test_a_stolen_key_backdating_before_its_revocation_is_refused_everywhere(
    world: World,
) -> None:
    # Before the theft: an invoice signed with key K, anchored, valid.
    honest = _item_result(world, world.item(1))
    assert honest["status"] == "accepted", honest
    _anchor(world)
    assert _verify(world, honest["invoice_id"])["valid"] is True
    anchored = world.services.ledger.anchored()
    assert anchored is not None

    # K is stolen; the authority revokes it, backdated to the compromise.
    revoked = world.client.post(
        f"/api/v1/admin/hospitals/{HOSPITAL}/keys/0/revocation",
        json={"revoked_at": "2025-06-01T00:00:00Z"},
        headers=ADMIN,
    )
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_log_size"] == anchored.size
    assert revoked.json()["signer"] == world.hospital.key.address
    (entry,) = _audit(world, "hospital_key_revoked")
    assert entry.actor == "admin:authority" and entry.subject == HOSPITAL
    assert entry.detail["revoked_log_size"] == anchored.size

    # The thief signs a new invoice dated before the revocation: refused at upload.
    stolen = world.item(2, total=42_000, patient_paid=42_000, lines=_one_line(42_000))
    refused = _item_result(world, stolen)
    assert refused["status"] == "refused" and refused["code"] == "key_revoked", refused

    # Forced into the database and the log anyway (as an attacker with database access).
    (prepared,) = world.services.ingest.prepare([stolen])
    assert not isinstance(prepared, Refusal)
    world.services.ingest._store(HOSPITAL, BatchResult("forced"), [prepared])
    _anchor(world)
    forced_id = "0x" + prepared.invoice_id.hex()
    verdict = _verify(world, forced_id)
    assert verdict["valid"] is False and verdict["failed_step"] == "registry"
    registry = next(s for s in verdict["steps"] if s["step"] == "registry")
    assert registry["code"] == "key_revoked_before_anchoring"
    assert registry["details"]["revoked_log_size"] == anchored.size
    assert "吊销" in registry["message_zh"] and "revoked" in registry["message_en"]

    # The trust list names the recorded size: an offline verifier that knows the leaf index
    # refuses the invoice too.
    document = world.client.get("/api/v1/trust-list").json()
    trust = load_trust_list(document, world.services.ledger.authority_address, datetime.now(UTC))
    (key,) = trust.hospital(HOSPITAL).keys  # type: ignore[union-attr]
    assert key.revoked_log_size == anchored.size
    with world.services.sessions() as db:
        forced = db.get(models.Invoice, prepared.invoice_id)
        assert forced is not None and forced.leaf_index is not None
    issued = datetime(2025, 3, 1, 2, tzinfo=UTC)
    assert trust.judge(HOSPITAL, key.signer, issued) is None  # the issue time alone: valid
    assert (
        trust.judge(HOSPITAL, key.signer, issued, leaf_index=forced.leaf_index)
        == KeyRejection.KEY_REVOKED_BEFORE_ANCHORING
    )

    # The contract refuses to pay it, with the key it recovered; the honest invoice is paid.
    outcome = _settle(world, forced_id, 42_000)
    assert isinstance(outcome.error, errors.KeyRevokedBeforeAnchoring), outcome
    assert outcome.error.signer == world.hospital.key.address
    assert world.services.ledger.claim_state(prepared.invoice_id).paid == 0
    assert _settle(world, honest["invoice_id"], 6_450).settled
    assert _verify(world, honest["invoice_id"])["valid"] is True


def _one_line(amount: int) -> list[dict[str, Any]]:
    return [
        {
            "code": "S001102000010",
            "name": "普通门诊诊查费",
            "class": "A",
            "unit_price": amount,
            "quantity_milli": 1000,
            "amount": amount,
            "department": "内科",
            "time": "2025-03-01T09:00:00+08:00",
        }
    ]


def test_rotation_keeps_the_old_keys_invoices_and_signs_with_the_new(world: World) -> None:
    new_key = Account.create()
    rotated = world.client.post(
        f"/api/v1/admin/hospitals/{HOSPITAL}/keys",
        json={"signer": new_key.address.lower(), "valid_from": "2025-04-01T00:00:00+08:00"},
        headers=ADMIN,
    )
    assert rotated.status_code == 201, rotated.text
    assert rotated.json() == {
        "hospital": HOSPITAL,
        "key_index": 1,
        "signer": new_key.address,
        "valid_from": "2025-03-31T16:00:00Z",
        "revoked_at": None,
        "revoked_log_size": None,
    }
    (entry,) = _audit(world, "hospital_key_rotated")
    assert entry.detail["key_index"] == 1 and entry.detail["signer"] == new_key.address
    # Issued before the rotation with the old key: accepted, verified and paid (not stolen).
    old = _item_result(world, world.item(3))
    new = _item_result(world, world.item(4, signer=new_key, issued_at="2025-04-02T10:00:00+08:00"))
    late = _item_result(world, world.item(5, issued_at="2025-04-02T10:00:00+08:00"))
    assert (old["status"], new["status"]) == ("accepted", "accepted"), (old, new)
    assert late["code"] == "signer_not_valid", late  # the old key after its end
    _anchor(world)
    assert _verify(world, old["invoice_id"])["valid"] is True
    assert _verify(world, new["invoice_id"])["valid"] is True
    assert _settle(world, old["invoice_id"], 100).settled
    # A rotation that does not start after the current key is the contract's refusal.
    again = world.client.post(
        f"/api/v1/admin/hospitals/{HOSPITAL}/keys",
        json={"signer": Account.create().address, "valid_from": "2025-01-01T00:00:00Z"},
        headers=ADMIN,
    )
    assert again.status_code == 422 and again.json()["error"]["code"] == "ledger_key_not_newer"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/keys", {"signer": "0x" + "11" * 20, "valid_from": "2026-01-01T00:00:00Z"}),
        ("POST", "/keys/0/revocation", {"revoked_at": "2025-01-01T00:00:00Z"}),
        ("POST", "/api-key", None),
        ("DELETE", "/api-key", None),
    ],
)
def test_key_endpoints_answer_404_for_an_unknown_hospital(
    world: World, method: str, path: str, body: dict[str, Any] | None
) -> None:
    response = world.client.request(
        method, f"/api/v1/admin/hospitals/H404{path}", json=body, headers=ADMIN
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "hospital_not_found"


def test_revocation_refusals_leave_the_key_as_it_was(world: World) -> None:
    base = f"/api/v1/admin/hospitals/{HOSPITAL}/keys"
    early = world.client.post(
        f"{base}/0/revocation", json={"revoked_at": "2023-12-31T00:00:00Z"}, headers=ADMIN
    )
    assert early.status_code == 422
    assert early.json()["error"]["code"] == "ledger_invalid_revocation_time"
    unknown = world.client.post(
        f"{base}/7/revocation", json={"revoked_at": "2025-01-01T00:00:00Z"}, headers=ADMIN
    )
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "ledger_unknown_key"
    naive = world.client.post(
        f"{base}/0/revocation", json={"revoked_at": "2025-01-01T00:00:00"}, headers=ADMIN
    )
    assert naive.status_code == 422 and naive.json()["error"]["code"] == "invalid_request"
    assert _audit(world, "hospital_key_revoked") == []
    assert _item_result(world, world.item(6))["status"] == "accepted"


def test_a_revoked_api_key_uploads_nothing_at_once_and_a_rotated_one_replaces_it(
    world: World,
) -> None:
    path = f"/api/v1/admin/hospitals/{HOSPITAL}/api-key"
    old = world.hospital.api_key
    assert world.client.delete(path, headers=ADMIN).status_code == 204
    upload = world.client.post(
        "/api/v1/invoices/batches", headers={"X-API-Key": old}, json={"items": [world.item(7)]}
    )
    assert upload.status_code == 401 and upload.json()["error"]["code"] == "api_key_invalid"
    assert world.client.delete(path, headers=ADMIN).status_code == 404  # none live any more
    issued = world.client.post(path, headers=ADMIN)
    assert issued.status_code == 201
    new = issued.json()["api_key"]
    assert new.startswith("zch_") and new != old
    assert world.upload([world.item(7)], api_key=new)["accepted"] == 1
    rotated = world.client.post(path, headers=ADMIN).json()["api_key"]
    refused = world.client.post(
        "/api/v1/invoices/batches", headers={"X-API-Key": new}, json={"items": [world.item(8)]}
    )
    assert refused.status_code == 401
    assert world.upload([world.item(8)], api_key=rotated)["accepted"] == 1
    assert [e.subject for e in _audit(world, "hospital_api_key_revoked")] == [HOSPITAL]
    assert [e.detail["replaced"] for e in _audit(world, "hospital_api_key_rotated")] == [
        False,
        True,
    ]
    # Neither key is in the audit log, nor its hash.
    for entry in _audit(world, "hospital_api_key_rotated"):
        assert new not in str(entry.detail) and rotated not in str(entry.detail)


# -- the issue-time window -------------------------------------------------------------------


@pytest.fixture
def windowed(tmp_path: Path, database_url: str | None) -> Iterator[World]:
    """A service that accepts invoices issued at most 30 days before their upload."""
    settings = Settings(
        data_dir=tmp_path,
        anchor_interval_ms=0,
        payers=("basic",),
        database_url=database_url,
        max_issue_age_days=30,
    )
    services = open_services(settings)
    key = Account.create()
    api_key = services.hospitals.register(
        HOSPITAL, "衢州市人民医院", HospitalLevel.TERTIARY, key.address, KEY_FROM
    )
    from tests.api.conftest import Hospital

    with TestClient(create_app(settings, services, background=False)) as client:
        yield World(services, client, Hospital(HOSPITAL, key, api_key), Hospital("", key, ""))


def _issued(world: World, n: int, moment: datetime) -> dict[str, Any]:
    at = moment.astimezone(UTC).replace(microsecond=0)
    line_at = (at - timedelta(hours=1)).isoformat()
    lines = [dict(line, time=line_at) for line in _one_line(6_450)]
    return world.item(n, issued_at=at.isoformat(), lines=lines, total=6_450, patient_paid=6_450)


def test_an_issue_time_older_than_the_window_is_refused(windowed: World) -> None:
    now = datetime.now(UTC)
    old = _item_result(windowed, _issued(windowed, 1, now - timedelta(days=30, hours=1)))
    assert old["status"] == "refused" and old["code"] == "issued_too_long_ago", old
    assert old["problems"][0]["path"] == "invoice.issued_at"
    recent = _item_result(windowed, _issued(windowed, 2, now - timedelta(days=29, hours=23)))
    assert recent["status"] == "accepted", recent


def test_the_window_is_30_days_outside_development_and_open_in_it(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).max_issue_age is None
    assert Settings(data_dir=tmp_path, max_issue_age_days=7).max_issue_age == timedelta(days=7)
    production = Settings(
        environment="production",
        keystore_password="long-secret",  # type: ignore[arg-type]
        hmac_key="k" * 40,  # type: ignore[arg-type]
        encryption_key="ab" * 32,  # type: ignore[arg-type]
        admin_token="a-real-admin-token",  # type: ignore[arg-type]
        data_dir=tmp_path,
    )
    assert production.max_issue_age == timedelta(days=30)
