"""Liveness and a summary of the ledger."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

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
