"""The web pages in a real browser: Debian's chromium driven by Playwright, against the service
running in a real uvicorn server with the demo data. Each test saves a screenshot under the
test output folder."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, expect, sync_playwright

from api.app import create_app
from api.bootstrap import Services, open_services
from api.demo import data as demo_data
from api.demo.seed import DEMO_CITIZEN_PASSWORD, seed_demo
from api.read.invoices import payload_of
from api.settings import Settings
from verifier.canonical import invoice_id
from verifier.qr import encode_payload, qr_png

CHROMIUM = "/usr/bin/chromium"
DATASET = demo_data.generate(2025, "small")
BIG_INPATIENT = 3  # 33082502-0001255131, the citizen also has invoice 5
SECOND = 5


@dataclass
class Site:
    url: str
    services: Services
    shots: Path

    def qr_text(self, index: int) -> str:
        from api.db import models

        inv = DATASET.invoices[index]
        with self.services.sessions() as db:
            row = db.get(models.Invoice, invoice_id(inv.hospital, inv.bill_code, inv.bill_number))
        assert row is not None
        return encode_payload(payload_of(self.services.domain, row))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    data = tmp_path_factory.mktemp("site")
    settings = Settings(data_dir=data, anchor_interval_ms=0)
    services = open_services(settings)
    assert seed_demo(services) == len(DATASET.invoices)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, services), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield Site(f"http://127.0.0.1:{port}", services, tmp_path_factory.mktemp("screenshots"))
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: run `make setup` (Debian package chromium)")
    with sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 390, "height": 844})  # a phone
    yield context.new_page()
    context.close()


def sign_in(page: Page, site: Site, index: int, password: str = DEMO_CITIZEN_PASSWORD) -> None:
    page.goto(f"{site.url}/web/citizen.html")
    page.fill("#id_number", DATASET.citizen_of(index).id_number)
    page.fill("#password", password)
    page.click("#signin-form button[type=submit]")


def test_citizen_claims_by_tap_and_by_photo_and_sees_the_payment(
    page: Page, site: Site, tmp_path: Path
) -> None:
    sign_in(page, site, BIG_INPATIENT, "wrong password")
    expect(page.locator("#error")).to_have_text("身份证号或密码不正确")  # a sentence, in Chinese
    expect(page.locator("#id_number")).to_have_value(DATASET.citizen_of(BIG_INPATIENT).id_number)
    page.fill("#password", DEMO_CITIZEN_PASSWORD)
    page.click("#signin-form button[type=submit]")
    big = DATASET.invoices[BIG_INPATIENT]
    card = page.locator(f".invoice[data-reference='{big.bill_code}-{big.bill_number}']")
    expect(card).to_be_visible()
    card.locator("button.claim").click()
    claim = page.locator(".claim-card").first
    expect(claim).to_be_visible()
    # The service's sequencer loop settles and pays approved claims within a moment.
    deadline = time.monotonic() + 30
    while claim.get_attribute("data-state") != "paid" and time.monotonic() < deadline:
        time.sleep(0.5)
        page.reload()
        claim = page.locator(".claim-card").first
    expect(claim).to_have_attribute("data-state", "paid")
    expect(claim.locator(".payment")).to_contain_text("已支付")
    claim.locator(".explain summary").click()
    expect(claim.locator(".lines li").first).to_be_visible()  # the adjudication, line by line
    claim.locator(".checks summary").click()
    expect(claim.locator(".history li")).to_have_count(6)
    expect(claim.locator(".history")).to_contain_text("signature_recovered")
    photo = tmp_path / "qr.png"
    photo.write_bytes(qr_png(site.qr_text(SECOND), scale=4))
    page.set_input_files("#photo", str(photo))
    expect(page.locator(".claim-card")).to_have_count(2)
    page.screenshot(path=str(site.shots / "citizen-claims.png"), full_page=True)
    page.click("#lang")
    expect(page.locator("h2[data-t=myClaims]")).to_have_text("My claims")


def test_auditor_verifies_a_photo_and_a_tampered_code_is_refused(
    page: Page, site: Site, tmp_path: Path
) -> None:
    page.goto(f"{site.url}/web/audit.html")
    photo = tmp_path / "qr.png"
    text = site.qr_text(BIG_INPATIENT)
    photo.write_bytes(qr_png(text, scale=4))
    page.set_input_files("#photo", str(photo))
    expect(page.locator("#verdict")).to_have_text("有效")
    expect(page.locator("#steps li[data-status=passed]")).to_have_count(8)
    # One character of the signed payload changed: the signature names nobody registered.
    tampered = text[:60] + ("A" if text[60] != "A" else "B") + text[61:]
    page.fill("#qr", tampered)
    page.click("#verify-text")
    expect(page.locator("#verdict")).to_have_text("无效")
    expect(page.locator("#steps li[data-status=failed]")).to_have_count(1)
    page.screenshot(path=str(site.shots / "audit-tampered.png"), full_page=True)


def test_hospital_uploads_a_batch_and_sees_each_invoice_result(
    page: Page, site: Site, tmp_path: Path
) -> None:
    import json

    from api.adapters.hospital_files import sign_item
    from api.demo.seed import API_KEYS_FILE

    hospital = DATASET.invoices[0].hospital
    api_key = json.loads((site.services.settings.data_dir / API_KEYS_FILE).read_text())[hospital]
    key = DATASET.hospital(hospital).private_key
    items = []
    for n in range(3):
        invoice = demo_data.invoice_json(DATASET.invoices[0])
        invoice.update(bill_number=f"00099900{n:02d}", check_code=f"web{n:03d}")
        items.append(sign_item({"invoice": invoice}, key, site.services.domain))
    items[1]["invoice"]["lines"][0]["amount"] += 1  # changed after signing
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps({"items": items}, ensure_ascii=False))
    page.goto(f"{site.url}/web/hospital.html")
    page.click("#upload")
    expect(page.locator("#error")).to_be_visible()  # no file chosen: a sentence, no crash
    page.fill("#api_key", api_key)
    page.set_input_files("#batch", str(batch))
    page.click("#upload")
    expect(page.locator(".result")).to_have_count(3)
    expect(page.locator(".result[data-status=accepted]")).to_have_count(2)
    refused = page.locator(".result[data-status=refused]")
    expect(refused).to_contain_text("lines[0].amount")
    page.screenshot(path=str(site.shots / "hospital-upload.png"), full_page=True)
    page.click("#list")
    expect(page.locator(".own-invoice").first).to_be_visible()
    assert page.locator(".own-invoice").count() >= 3


def test_hospital_uploads_its_signed_his_exports(page: Page, site: Site, tmp_path: Path) -> None:
    """docs/his-export.md: exports signed by ``zeroclaim hospital sign`` go up through the
    page as they are; a refusal names the interface's field."""
    import json

    from api.adapters.hospital_files import sign_item
    from api.demo.seed import API_KEYS_FILE
    from tests.conftest import ROOT

    hospital = DATASET.invoices[0].hospital
    api_key = json.loads((site.services.settings.data_dir / API_KEYS_FILE).read_text())[hospital]
    key = DATASET.hospital(hospital).private_key
    example = json.loads((ROOT / "docs" / "examples" / "his-outpatient.json").read_text())
    items = []
    for n in range(2):
        export = json.loads(json.dumps(example))
        export["response"]["billNo"] = f"00098800{n:02d}"
        items.append(sign_item({"his": export}, key, site.services.domain, hospital))
    items[1]["his"]["request"]["listDetail"][2]["amt"] = "25.0100"  # changed after signing
    batch = tmp_path / "his-signed.json"
    batch.write_text(json.dumps({"items": items}, ensure_ascii=False))
    page.goto(f"{site.url}/web/hospital.html")
    page.fill("#api_key", api_key)
    page.set_input_files("#batch", str(batch))
    page.click("#upload")
    expect(page.locator(".result")).to_have_count(2)
    expect(page.locator(".result[data-status=accepted]")).to_have_count(1)
    refused = page.locator(".result[data-status=refused]")
    expect(refused).to_contain_text("his.request.listDetail[2].amt")


def test_reviewer_clears_a_flagged_claim(page: Page, site: Site) -> None:
    from sqlalchemy import select

    from api.db import models
    from tests.api.flagged import upload_copy

    index = 16  # an inpatient invoice of another citizen
    inv = DATASET.invoices[index]
    with site.services.sessions() as db:
        issued = db.scalar(
            select(models.Invoice.issued_at).where(
                models.Invoice.bill_code == inv.bill_code,
                models.Invoice.bill_number == inv.bill_number,
            )
        )
    assert issued is not None
    # A copy (dated as the demo data was moved) billing a code in no catalogue: the audit
    # blocks it, the claim waits for review.
    days = (issued - inv.issued_at).days
    reference = upload_copy(site.services, DATASET, index, "0099000016", flagged=True, days=days)
    citizen_hash = site.services.ingest.personal.id_number_hash(DATASET.citizen_of(index).id_number)
    with site.services.sessions() as db:
        citizen = db.scalar(
            select(models.Citizen).where(models.Citizen.id_number_hash == citizen_hash)
        )
    assert citizen is not None
    claim = site.services.claim.submit(citizen, reference, "basic", "app")
    assert claim.state == "in_review"
    page.goto(f"{site.url}/web/review.html")
    page.fill("#token", "wrong")
    page.click("#load")
    expect(page.locator("#error")).to_be_visible()
    page.fill("#token", "dev-admin-token")
    page.click("#load")
    card = page.locator(f".review-card[data-claim='{claim.id}']")
    expect(card).to_contain_text("不在医保目录中")  # the audit hit, in Chinese by default
    page.screenshot(path=str(site.shots / "review-queue.png"), full_page=True)
    card.locator("button.reject").click()  # a rejection needs a reason: refused, explained
    expect(page.locator("#error")).to_be_visible()
    card.locator("button.approve").click()
    expect(page.locator(f".review-card[data-claim='{claim.id}']")).to_have_count(0)
    with site.services.sessions() as db:
        stored = db.get(models.Claim, claim.id)
        assert stored is not None and stored.state in ("approved", "settling", "paid")


def test_auditor_checks_consistency_reconciles_and_sees_figures(page: Page, site: Site) -> None:
    page.goto(f"{site.url}/web/audit.html")
    expect(page.locator(".checkpoint").first).to_be_visible()
    sizes = page.locator("#old option").all_inner_texts()
    assert len(sizes) >= 3  # the demo anchors after each hospital's batch
    for old in sizes[:-1]:  # powers of two or not, the browser verifies each proof
        page.select_option("#old", old)
        page.select_option("#new", sizes[-1])
        page.click("#consistency")
        expect(page.locator("#consistency-result")).to_contain_text(f"{old} → {sizes[-1]}")
        expect(page.locator("#consistency-result")).to_have_attribute("data-ok", "true")
    # The browser's RFC 9162 check refuses a proof with one hash changed.
    refused = page.evaluate(
        """async ([old, neu]) => {
        const body = await api(`/api/v1/checkpoints/consistency?old=${old}&new=${neu}`);
        const root = (size) => hex(checkpoints.find((c) => c.size === size).root);
        const proof = body.proof.map(hex);
        proof[0][0] ^= 1;
        return await verifyConsistency(old, neu, proof, root(old), root(neu));
    }""",
        [int(sizes[1]), int(sizes[-1])],
    )
    assert refused is False
    page.fill("#token", "dev-admin-token")
    page.click("#reconcile")
    expect(page.locator("#reconcile-result")).to_have_attribute("data-consistent", "true")
    page.click("#load-stats")
    expect(page.locator("svg.chart")).to_have_count(7)
    page.screenshot(path=str(site.shots / "audit-dashboard.png"), full_page=True)


def test_hospital_voids_an_invoice_after_confirming(
    page: Page,
    site: Site,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import json

    from eth_account import Account

    from api.cli import main
    from api.demo.seed import API_KEYS_FILE

    index = 7  # an outpatient invoice nobody claims in these tests
    inv = DATASET.invoices[index]
    reference = f"{inv.bill_code}-{inv.bill_number}"
    api_key = json.loads((site.services.settings.data_dir / API_KEYS_FILE).read_text())[
        inv.hospital
    ]
    # The hospital signs at its office with its own key (demo key kept in a keystore here).
    monkeypatch.setenv("ZEROCLAIM_HOSPITAL_KEY_PASSWORD", "office")
    keystore = tmp_path / "key.json"
    keystore.write_text(
        json.dumps(
            Account.encrypt(
                DATASET.hospital(inv.hospital).private_key, "office", kdf="pbkdf2", iterations=2
            )
        )
    )
    red = "0x" + "7e" * 32
    assert (
        main(
            [
                "hospital",
                "sign-void",
                f"{inv.hospital}:{reference}",
                "--red",
                red,
                "--keystore",
                str(keystore),
                "--chain-id",
                str(site.services.domain.chain_id),
                "--contract",
                site.services.domain.contract,
            ]
        )
        == 0
    )
    signature = json.loads(capsys.readouterr().out)["signature"]

    page.goto(f"{site.url}/web/hospital.html")
    page.fill("#api_key", api_key)
    page.click("#list")
    card = page.locator(".own-invoice", has_text=reference)
    card.locator(".red").fill(red)
    card.locator(".signature").fill(signature)
    page.once("dialog", lambda dialog: dialog.dismiss())  # first: cancelled, nothing happens
    card.locator("button.void").click()
    expect(page.locator(".own-invoice", has_text=reference)).to_have_attribute(
        "data-status", "anchored"
    )
    page.once("dialog", lambda dialog: dialog.accept())
    card.locator("button.void").click()
    expect(page.locator(".own-invoice", has_text=reference)).to_have_attribute(
        "data-status", "voided"
    )
    from verifier.canonical import invoice_id

    state = site.services.ledger.claim_state(
        invoice_id(inv.hospital, inv.bill_code, inv.bill_number)
    )
    assert state.voided
