"""Liveness, readiness, metrics, and a summary of the ledger."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from api.adapters.metrics import metrics_text, readiness
from api.deps import ServicesDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    ledger_backend: str
    chain_id: int
    contract: str
    block_number: int
    log_size: int
    anchored_size: int


@router.get("/health", response_model=Health)
def health(services: ServicesDep) -> Health:
    with services.lock:
        anchored = services.sequencer.anchored()
        return Health(
            status="ok",
            ledger_backend=services.session.config.backend,
            chain_id=services.session.backend.chain_id,
            contract=services.session.ledger.address,
            block_number=services.session.backend.block_number(),
            log_size=services.log.size,
            anchored_size=anchored.size if anchored else 0,
        )


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers (nothing else is checked). Answered on the event loop,
    not in the thread pool, so that it never queues behind forty busy requests."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "not ready: the problems are listed"}})
def readyz(services: ServicesDep, request: Request) -> Any:
    """Readiness: the database answers, the ledger answers, anchoring is not behind by more
    than ``ZEROCLAIM_READY_MAX_ANCHORING_LAG`` leaves and has not stood still for longer than
    ``ZEROCLAIM_READY_MAX_ANCHORING_STALL_S`` while invoices wait, no approved claim has waited
    for settlement longer than ``ZEROCLAIM_READY_MAX_SETTLEMENT_WAIT_S``, and, where this
    process runs the sequencer loop, some worker holds the sequencer lock and has beaten
    within ``ZEROCLAIM_READY_MAX_SEQUENCER_SILENCE_S``; 503 lists what is not."""
    state = readiness(services, getattr(request.app.state, "runs_sequencer", False))
    return JSONResponse(state, status_code=200 if state["ready"] else 503)


@router.get("/metrics", response_class=Response)
def metrics(services: ServicesDep) -> Response:
    """Prometheus text exposition (see api/adapters/metrics.py for the names)."""
    return Response(metrics_text(services), media_type="text/plain; version=0.0.4")
