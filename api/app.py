"""The FastAPI application: ledger and log opened at start-up, sequencer in the background."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import errors
from api.routes import (
    admin,
    checkpoints,
    citizens,
    claims,
    health,
    invoices,
    ledger,
    qr,
    trust,
    verify,
)
from api.services import Services, open_services
from api.settings import Settings

log = logging.getLogger("zeroclaim")


def _anchor_loop(services: Services, stop: threading.Event) -> None:
    while not stop.wait(0.2):
        try:
            with services.lock:
                appended = services.anchoring.run_once()
            paid = services.claims.settle_approved()
            if paid:
                log.info("settled and paid %d claims", paid)
            if appended:
                log.info("appended %d invoices to the log", appended)
        except Exception:  # keep the loop alive; the next round retries
            log.exception("anchoring failed")


def create_app(
    settings: Settings, services: Services | None = None, background: bool = True
) -> FastAPI:
    """The application; ``background`` runs the sequencer loop (tests drive it themselves)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        opened = services or open_services(settings)
        app.state.services = opened
        stop = threading.Event()
        worker = threading.Thread(target=_anchor_loop, args=(opened, stop), daemon=True)
        if background:
            worker.start()
        try:
            yield
        finally:
            stop.set()
            if background:
                worker.join(timeout=5)
            opened.close()

    app = FastAPI(
        title="zeroclaim",
        version="0.1.0",
        description="Medical e-invoice ledger: anchored invoices, proofs and checkpoints.",
        lifespan=lifespan,
    )
    errors.install(app)
    app.include_router(health.router)
    for module in (invoices, qr, verify, trust, citizens, claims, checkpoints, ledger, admin):
        app.include_router(module.router, prefix="/api/v1")
    return app
