"""The whole flow on the RPC ledger, against anvil as a separate JSON-RPC node process:
register a hospital, upload, anchor, verify, claim, settle and pay, void."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from eth_account import Account
from fastapi.testclient import TestClient

from api.adapters.hospital_files import sign_item
from api.app import create_app
from api.bootstrap import open_services
from api.demo.seed import seed_demo
from api.settings import Settings
from tests.api.conftest import invoice_json, patient
from tests.api.test_claims import BIG_INPATIENT, DATASET, Demo

ADMIN = {"Authorization": "Bearer dev-admin-token"}
CODE = "H33089900001"  # not one of the demo's hospitals


def test_the_whole_flow_on_a_json_rpc_node(tmp_path: Path, anvil_url: str) -> None:
    settings = Settings(
        data_dir=tmp_path, ledger_backend="rpc", rpc_url=anvil_url, anchor_interval_ms=0
    )
    services = open_services(settings)  # deploys the contract on the node
    assert services.ledger.backend_name == "rpc"
    assert seed_demo(services, end=date(2025, 1, 1)) == len(DATASET.invoices)
    services.claim.clock = lambda: datetime(2026, 1, 15, 10, tzinfo=UTC)
    with TestClient(create_app(settings, services, background=False)) as client:
        key = Account.create()
        registered = client.post(
            "/api/v1/admin/hospitals",
            headers=ADMIN,
            json={
                "code": CODE,
                "name": "衢州市人民医院",
                "level": "secondary",
                "signer": key.address,
                "valid_from": "2024-01-01T00:00:00Z",
            },
        )
        assert registered.status_code == 201, registered.text
        hospital = {"X-API-Key": registered.json()["api_key"]}
        items = [
            sign_item(
                {"invoice": invoice_json(n, CODE, patient(n)), "patient": patient(n)},
                key.key,
                services.domain,
            )
            for n in (1, 2)
        ]
        uploaded = client.post("/api/v1/invoices/batches", headers=hospital, json={"items": items})
        assert uploaded.json()["accepted"] == 2
        services.anchoring.run_once(force=True)
        status = client.get("/api/v1/invoices/33082025-0000000001", headers=hospital).json()
        assert status["status"] == "anchored" and status["checkpoint_transaction"]

        text = client.get("/api/v1/invoices/33082025-0000000001/qr", headers=hospital).json()
        verdict = client.post("/api/v1/verify", json={"qr_text": text["payload"]}).json()
        assert verdict["valid"]
        assert [s["status"] for s in verdict["steps"]] == ["passed"] * 8

        demo = Demo(services, client)
        claim = demo.claim(BIG_INPATIENT)
        assert claim.status_code == 201 and claim.json()["state"] == "approved", claim.text
        assert services.settle.run() == 1
        detail = client.get(
            f"/api/v1/claims/{claim.json()['claim_id']}", headers=demo.sign_in(BIG_INPATIENT)
        ).json()
        assert detail["state"] == "paid"
        assert demo.paid_on_chain(BIG_INPATIENT) == claim.json()["amount_fen"]

        first = bytes.fromhex(status["invoice_id"][2:])
        second = client.get("/api/v1/invoices/33082025-0000000002", headers=hospital).json()
        red = b"\x09" * 32
        with services.ledger.exclusive() as parts:  # the hospital signs, at its office
            signature = parts.session.ledger.sign_void(
                key, bytes.fromhex(second["invoice_id"][2:]), red
            )
        voided = client.post(
            "/api/v1/invoices/33082025-0000000002/void",
            headers=hospital,
            json={"red_invoice_id": "0x" + red.hex(), "signature": "0x" + signature.hex()},
        )
        assert voided.status_code == 200 and voided.json()["status"] == "voided", voided.text
        text = client.get("/api/v1/invoices/33082025-0000000002/qr", headers=hospital).json()
        after = client.post("/api/v1/verify", json={"qr_text": text["payload"]}).json()
        assert not after["valid"] and after["failed_step"] == "status"
        assert services.ledger.claim_state(first).voided is False  # only the second
