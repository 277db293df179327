"""Online verification against a live ledger: every vector fails at its named step, the valid
one passes every step; photos, pointer codes and typed references; counts and rate limits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient

from api.adapters.hospital_files import sign_item
from api.app import create_app
from api.bootstrap import Services, open_services
from api.settings import DEV_PASSWORD, Settings
from chain.keys import KeyStore
from chain.model import HospitalLevel
from tests.conftest import ROOT
from verifier.qr import qr_png

VECTORS = ROOT / "tests" / "verifier" / "vectors" / "verify"
LEDGER = json.loads((VECTORS / "ledger.json").read_text())
NAMES = sorted(p.stem for p in VECTORS.glob("*.json") if p.stem != "ledger")


def key(name: str) -> bytes:
    return bytes.fromhex(LEDGER[name][2:])


@dataclass
class Live:
    services: Services
    client: TestClient
    api_key: str


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    data = tmp_path_factory.mktemp("verify")
    settings = Settings(
        data_dir=data,
        payers=("basic",),
        anchor_interval_ms=0,
        verify_per_minute=6000,
        verify_burst=1000,
    )
    # The vectors' domain is CREATE(authority, 0): bootstrap with the vectors' authority key.
    KeyStore(
        settings.ledger_config().keystore_dir, DEV_PASSWORD, settings.ledger_config().kdf_iterations
    ).create("authority", key("authority_key"))
    services = open_services(settings)
    assert services.domain.contract == LEDGER["contract"]
    revoked, hospital_key = (
        Account.from_key(key("revoked_key")),
        Account.from_key(key("hospital_key")),
    )
    api_key = services.hospitals.register(
        LEDGER["hospital"],
        "衢州市人民医院",
        HospitalLevel.TERTIARY,
        revoked.address,
        datetime(2023, 1, 1, tzinfo=UTC),
    )
    services.ledger.rotate_hospital_key(
        LEDGER["hospital"], hospital_key.address, datetime(2024, 1, 1, tzinfo=UTC)
    )
    services.ledger.revoke_hospital_key(LEDGER["hospital"], 0, datetime(2023, 6, 1, tzinfo=UTC))
    item = sign_item(
        {"invoice": LEDGER["invoice"], "patient": LEDGER["patient"]},
        key("hospital_key"),
        services.domain,
    )
    assert not services.ingest.upload(LEDGER["hospital"], [item]).refusals
    services.anchoring.run_once(force=True)
    with TestClient(create_app(settings, services, background=False)) as client:
        yield Live(services, client, api_key)


def vector(name: str) -> dict[str, Any]:
    return json.loads((VECTORS / f"{name}.json").read_text())  # type: ignore[no-any-return]


def test_committed_vectors_are_what_the_generator_makes() -> None:
    from tests.verifier.vectors.make_verify_vectors import documents

    for name, text in documents().items():
        assert (VECTORS / name).read_text() == text, name


@pytest.mark.parametrize("name", NAMES)
def test_each_vector_fails_at_its_named_step(live: Live, name: str) -> None:
    v = vector(name)
    verdict, _ = live.services.verification.verify(v["text"])
    steps = {s.step: s for s in verdict.steps}
    assert [s.step for s in verdict.steps] == [
        "decode",
        "parse",
        "canonicalise",
        "signature",
        "registry",
        "inclusion",
        "record",
        "status",
    ]
    if v["step"] is None:
        assert verdict.valid, [(s.step, s.code) for s in verdict.steps]
        assert all(s.status == "passed" for s in verdict.steps)
        return
    assert not verdict.valid
    assert verdict.failed_step == v["step"]
    assert steps[v["step"]].code == v["code"]
    after = [s for s in verdict.steps[[s.step for s in verdict.steps].index(v["step"]) + 1 :]]
    assert all(s.status == "not_run" for s in after)
    assert steps[v["step"]].message_zh and steps[v["step"]].message_en


def test_valid_verdict_over_http_with_count(live: Live) -> None:
    text = vector("valid")["text"]
    first = live.client.post("/api/v1/verify", json={"qr_text": text}).json()
    second = live.client.post("/api/v1/verify", json={"qr_text": text}).json()
    assert first["valid"] and second["valid"]
    assert second["verification_count"] == first["verification_count"] + 1
    status = first["steps"][-1]
    assert status["code"] == "status_ok"
    assert status["details"]["claimable"] == LEDGER["invoice"]["total"]
    assert "可报销余额" in status["message_zh"] and "claimable" in status["message_en"]


def test_photo_of_the_qr_verifies(live: Live) -> None:
    png = qr_png(vector("valid")["text"], scale=3)
    body = live.client.post(
        "/api/v1/verify/image", content=png, headers={"Content-Type": "image/png"}
    ).json()
    assert body["valid"] and body["steps"][0]["code"] == "decoded"
    blank = live.client.post(
        "/api/v1/verify/image",
        content=qr_png("x", scale=1)[:50],
        headers={"Content-Type": "image/png"},
    ).json()
    assert not blank["valid"] and blank["failed_step"] == "decode"
    assert blank["steps"][0]["code"] in ("image_unreadable", "no_qr_found")


def test_tampered_photo_is_refused(live: Live) -> None:
    png = qr_png(vector("tampered_amount")["text"], scale=3)
    body = live.client.post(
        "/api/v1/verify/image", content=png, headers={"Content-Type": "image/png"}
    ).json()
    assert not body["valid"] and body["failed_step"] == "registry"


def test_typed_reference_and_pointer_codes(live: Live) -> None:
    inv = LEDGER["invoice"]
    typed = {
        "bill_code": inv["bill_code"],
        "bill_number": inv["bill_number"],
        "check_code": inv["check_code"],
        "amount_fen": inv["total"],
        "issued_on": "2025-03-01",
    }
    ok = live.client.post("/api/v1/verify", json=typed).json()
    assert ok["valid"], ok
    assert [s["status"] for s in ok["steps"][2:5]] == ["passed", "skipped", "skipped"]
    wrong = live.client.post("/api/v1/verify", json={**typed, "check_code": "000000"}).json()
    # The check code picks the bill (several hospitals may issue one number): a wrong one is
    # an unknown bill.
    assert wrong["failed_step"] == "inclusion" and wrong["steps"][5]["code"] == "invoice_unknown"
    need_check = live.client.post(
        "/api/v1/verify", json={"bill_code": inv["bill_code"], "bill_number": inv["bill_number"]}
    )
    assert need_check.status_code == 422
    url = (
        "https://pjcy.example.gov.cn/check?d="
        f"{inv['bill_code']}_{inv['bill_number']}_{inv['check_code']}_35.00_20250301"
    )
    pointer = live.client.post("/api/v1/verify", json={"qr_text": url}).json()
    assert pointer["valid"], pointer
    bad_amount = url.replace("_35.00_", "_36.00_")
    refused = live.client.post("/api/v1/verify", json={"qr_text": bad_amount}).json()
    assert refused["failed_step"] == "record"
    assert refused["steps"][6]["details"]["fields"] == "amount_fen"
    # The stored check code is Ab12Cd: compared without regard to case, typed or scanned.
    assert inv["check_code"] == "Ab12Cd"
    upper = live.client.post("/api/v1/verify", json={**typed, "check_code": "AB12CD"}).json()
    assert upper["valid"], upper
    lower = url.replace("_Ab12Cd_", "_ab12cd_")
    assert lower != url
    assert live.client.post("/api/v1/verify", json={"qr_text": lower}).json()["valid"]
    named = (
        f"https://pjcy.example.gov.cn/h5?billBatchCode={inv['bill_code']}"
        f"&billNo={inv['bill_number']}&random=AB12CD&totalAmt=35.00&ivcDateTime=20250301100000000"
    )
    by_name = live.client.post("/api/v1/verify", json={"qr_text": named}).json()
    assert by_name["valid"], by_name
    assert by_name["steps"][1]["details"] == {"form": "named"}


def test_a_rate_limiter_forgets_clients_whose_bucket_filled_up_again() -> None:
    """A stream of new clients (one request each, from ever new addresses) does not grow the
    limiter without bound; a client still throttled is remembered through every sweep."""
    from api.flows.verify import RateLimiter

    clock = [0.0]
    limiter = RateLimiter(per_minute=60, burst=1, clock=lambda: clock[0])
    assert limiter.allow("throttled") == 0
    for n in range(50_000):
        clock[0] += 0.001  # 50 s in all: the first buckets fill up again as the stream goes on
        limiter.allow(f"10.0.{n // 256}.{n % 256}")
    assert limiter.tracked() < 4_096  # without sweeping: 50,001
    clock[0] = 100.0
    assert limiter.allow("late") == 0
    # Still throttled when swept: its bucket is remembered.
    assert limiter.allow("late") > 0
    for n in range(5_000):
        limiter.allow(f"192.168.{n // 256}.{n % 256}")
    assert limiter.allow("late") > 0


def test_rate_limit_per_client(live: Live) -> None:
    from api.flows.verify import RateLimiter

    clock = [0.0]
    limiter = RateLimiter(per_minute=60, burst=2, clock=lambda: clock[0])
    assert limiter.allow("a") == 0 and limiter.allow("a") == 0
    assert limiter.allow("a") == pytest.approx(1.0)
    assert limiter.allow("b") == 0  # another client has its own bucket
    clock[0] = 1.0
    assert limiter.allow("a") == 0
    saved = live.services.rate_limiter
    live.services.rate_limiter = RateLimiter(per_minute=1, burst=1)
    try:
        live.client.post("/api/v1/verify", json={"qr_text": "x"})
        limited = live.client.post("/api/v1/verify", json={"qr_text": "x"})
        assert limited.status_code == 429
        assert limited.json()["error"]["code"] == "rate_limited"
    finally:
        live.services.rate_limiter = saved


def test_tampered_database_is_caught_by_the_chain(live: Live, tmp_path: Path) -> None:
    from sqlalchemy import update

    from api.db import models

    services = live.services
    text = vector("valid")["text"]
    with services.sessions() as db:
        row = db.scalars(__import__("sqlalchemy").select(models.Invoice)).one()
        original = row.total
        db.execute(update(models.Invoice).values(total=original + 1))
        db.commit()
    try:
        verdict, _ = services.verification.verify(text)
        assert verdict.failed_step == "inclusion"
    finally:
        with services.sessions() as db:
            db.execute(update(models.Invoice).values(total=original))
            db.commit()


def test_trust_list_and_offline_verification(
    live: Live, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from api.cli import main
    from verifier.trust_list import load_trust_list

    authority = live.client.get("/api/v1/ledger").json()["authority"]
    document = live.client.get("/api/v1/trust-list").json()
    trust = load_trust_list(document, authority, datetime.now(UTC))
    assert trust.domain == live.services.domain
    issued = datetime(2025, 3, 1, 2, tzinfo=UTC)
    hospital_key = Account.from_key(key("hospital_key")).address
    assert trust.judge(LEDGER["hospital"], hospital_key, issued) is None
    assert (
        trust.judge(LEDGER["hospital"], Account.from_key(key("revoked_key")).address, issued)
        == "key_revoked"
    )
    path = tmp_path / "trust.json"
    path.write_text(json.dumps(document))
    offline = ["--offline", "--trust-list", str(path), "--authority", authority]

    assert main(["verify", vector("valid")["text"], *offline]) == 0
    out = capsys.readouterr().out
    assert "VALID" in out and "Offline: cannot check the ledger" in out
    assert main(["verify", vector("tampered_amount")["text"], *offline]) == 1
    assert "INVALID" in capsys.readouterr().out
    assert main(["verify", vector("replay_other_chain")["text"], *offline, "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["failed_step"] == "canonicalise"
    photo = tmp_path / "qr.png"
    photo.write_bytes(qr_png(vector("valid")["text"], scale=4))
    assert main(["verify", str(photo), *offline, "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert [s["status"] for s in body["steps"]] == ["passed"] * 5 + ["skipped"] * 3
    # A trust list signed by someone else is refused before anything is verified.
    assert (
        main(
            [
                "verify",
                vector("valid")["text"],
                "--offline",
                "--trust-list",
                str(path),
                "--authority",
                "0x" + "11" * 20,
            ]
        )
        == 2
    )
