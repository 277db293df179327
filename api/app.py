"""The FastAPI application: ledger and log opened at start-up, sequencer in the background."""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from multiprocessing.connection import wait
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from api import errors
from api.adapters.metrics import request_middleware
from api.adapters.sequencer_lock import SequencerLock
from api.bootstrap import Services, open_services
from api.limits import BodyLimit
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
from api.settings import Settings

log = logging.getLogger("zeroclaim")
#: The web pages: plain HTML, CSS and JavaScript, every asset served from here (no CDN).
WEB = Path(__file__).resolve().parent / "web"


def _sequencer_loop(services: Services, stop: threading.Event) -> None:
    """Anchors and settles while this process holds the sequencer lock; other worker
    processes keep trying, so one takes over when the holder stops."""
    lock = SequencerLock(services.engine, services.settings.data_dir)
    try:
        while not stop.wait(0.2):
            try:
                if not lock.try_acquire():
                    continue
                appended = services.anchoring.run_once()
                paid = services.settle.run()
                if appended:
                    log.info("appended %d invoices to the log", appended)
                if paid:
                    log.info("settled and paid %d claims", paid)
            except Exception:  # keep the loop alive (the database may be away); retry
                log.exception("sequencer round failed")
    finally:
        lock.release()


def _end_with_supervisor() -> None:
    """In a worker that ``uvicorn --workers`` started: end when the supervisor is gone.

    uvicorn's workers share the listening socket it bound and would outlive a supervisor
    killed with SIGKILL, answering on the port that a restart then cannot bind. The parent's
    sentinel (a pipe only the parent holds open) reads end-of-file when it dies; a process
    with no multiprocessing parent (``zeroclaim run``, tests) has nothing to watch."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="end-with-supervisor", daemon=True).start()


def app_from_environment() -> FastAPI:
    """The application configured from ``ZEROCLAIM_*`` (``uvicorn --factory``, several
    workers: each opens its own services, one of them runs the sequencer)."""
    from api.settings import Settings

    return create_app(Settings())


def create_app(
    settings: Settings, services: Services | None = None, background: bool = True
) -> FastAPI:
    """The application; ``background`` runs the sequencer loop (tests drive it themselves)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _end_with_supervisor()
        opened = services or open_services(settings)
        app.state.services = opened
        stop = threading.Event()
        worker = threading.Thread(target=_sequencer_loop, args=(opened, stop), daemon=True)
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
    app.add_middleware(BodyLimit, settings=settings)  # inside the request log: 413s are logged
    app.middleware("http")(request_middleware)
    app.state.runs_sequencer = background  # /readyz then expects a live sequencer somewhere
    app.mount("/web", StaticFiles(directory=WEB, html=True), name="web")

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/web/")

    app.include_router(health.router)
    for module in (invoices, qr, verify, trust, citizens, claims, checkpoints, ledger, admin):
        app.include_router(module.router, prefix="/api/v1")
    return app
