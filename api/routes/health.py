"""Liveness, readiness, metrics, and a summary of the ledger."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from api.deps import HealthDep

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
def health(read: HealthDep) -> Health:
    summary = read.summary()
    return Health(
        status="ok",
        ledger_backend=summary.backend,
        chain_id=summary.chain_id,
        contract=summary.contract,
        block_number=summary.block_number,
        log_size=summary.log_size,
        anchored_size=summary.anchored_size,
    )


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers (nothing else is checked). Answered on the event loop,
    not in the thread pool, so that it never queues behind forty busy requests."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "not ready: the problems are listed"}})
def readyz(read: HealthDep, request: Request) -> Any:
    """Readiness: the database answers, the ledger answers, anchoring is not behind by more
    than ``ZEROCLAIM_READY_MAX_ANCHORING_LAG`` leaves and has not stood still for longer than
    ``ZEROCLAIM_READY_MAX_ANCHORING_STALL_S`` while invoices wait, no approved claim has waited
    for settlement longer than ``ZEROCLAIM_READY_MAX_SETTLEMENT_WAIT_S``, and, where this
    process runs the sequencer loop, some worker holds the sequencer lock and has beaten
    within ``ZEROCLAIM_READY_MAX_SEQUENCER_SILENCE_S``; 503 lists what is not."""
    state = read.readiness(getattr(request.app.state, "runs_sequencer", False))
    return JSONResponse(state, status_code=200 if state["ready"] else 503)


@router.get("/metrics", response_class=Response)
def metrics(read: HealthDep) -> Response:
    """Prometheus text exposition (see api/adapters/metrics.py for the names)."""
    return Response(read.metrics_text(), media_type="text/plain; version=0.0.4")
