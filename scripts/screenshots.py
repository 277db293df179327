"""Takes the README's screenshots of every page, phone-sized and desktop-sized, into
docs/screenshots/ (run: .venv/bin/python scripts/screenshots.py)."""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright

from api.app import create_app
from api.bootstrap import open_services
from api.demo import data as demo_data
from api.demo.seed import DEMO_CITIZEN_PASSWORD, seed_demo
from api.settings import Settings

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 900}}


def main() -> None:
    dataset = demo_data.generate(2025, "small")
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp))
        services = open_services(settings)
        seed_demo(services)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(settings, services), host="127.0.0.1", port=port, log_level="warning"
            )
        )
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        citizen = dataset.citizen_of(3)
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium",
                headless=True,
                args=["--no-sandbox", "--disable-gpu"],
            )
            for size, viewport in SIZES.items():
                page = browser.new_page(viewport=viewport)  # type: ignore[arg-type]
                page.goto(f"{url}/web/citizen.html")
                page.fill("#id_number", citizen.id_number)
                page.fill("#password", DEMO_CITIZEN_PASSWORD)
                page.click("#signin-form button[type=submit]")
                page.wait_for_selector(".invoice")
                page.locator(".invoice button.claim").first.click()
                page.wait_for_selector(".claim-card")
                time.sleep(1.5)
                page.reload()
                page.wait_for_selector(".claim-card")
                page.screenshot(path=str(OUT / f"citizen-{size}.png"), full_page=True)
                page.goto(f"{url}/web/audit.html")
                page.fill("#bill_code", dataset.invoices[3].bill_code)
                page.fill("#bill_number", dataset.invoices[3].bill_number)
                page.fill("#check_code", dataset.invoices[3].check_code)
                page.click("#verify-typed")
                page.wait_for_selector("#steps li")
                page.fill("#token", settings.admin_token.get_secret_value())
                page.click("#reconcile")
                page.click("#load-stats")
                page.wait_for_selector("svg.chart")
                page.screenshot(path=str(OUT / f"audit-{size}.png"), full_page=True)
                page.goto(f"{url}/web/hospital.html")
                page.screenshot(path=str(OUT / f"hospital-{size}.png"), full_page=True)
                page.goto(f"{url}/web/review.html")
                page.fill("#token", settings.admin_token.get_secret_value())
                page.click("#load")
                page.wait_for_selector("#queue p, #queue .review-card")
                page.screenshot(path=str(OUT / f"review-{size}.png"), full_page=True)
                page.close()
            browser.close()
        server.should_exit = True
        services.close()


if __name__ == "__main__":
    main()
