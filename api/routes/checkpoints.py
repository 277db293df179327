"""Checkpoints of the invoice log as anchored on chain, and consistency proofs between them."""

from __future__ import annotations

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.deps import ServicesDep
from api.errors import ApiError

MAX_SIZE = 2**64 - 1  # tree sizes are uint64 on chain

router = APIRouter(prefix="/checkpoints", tags=["checkpoints"])


class CheckpointPublic(BaseModel):
    size: int
    root: str
    block_number: int
    transaction: str


class ConsistencyProofPublic(BaseModel):
    old_size: int
    new_size: int
    old_root: str
    new_root: str
    proof: list[str]


@router.get("", response_model=list[CheckpointPublic])
def list_checkpoints(services: ServicesDep) -> list[CheckpointPublic]:
    """Every checkpoint anchored on chain, oldest first (read from the contract's events)."""
    with services.lock:
        events = services.session.ledger.events(name="CheckpointAnchored")
    return [
        CheckpointPublic(
            size=e.args["size"],
            root="0x" + e.args["root"].hex(),
            block_number=e.block_number,
            transaction="0x" + e.tx_hash.hex(),
        )
        for e in events
    ]


@router.get("/consistency", response_model=ConsistencyProofPublic)
def consistency(
    services: ServicesDep,
    old: int = Query(ge=1, le=MAX_SIZE),
    new: int = Query(ge=1, le=MAX_SIZE),
) -> ConsistencyProofPublic:
    """RFC 9162 consistency proof between two anchored checkpoints."""
    with services.lock:
        ledger = services.session.ledger
        old_cp, new_cp = ledger.checkpoint(old), ledger.checkpoint(new)
        missing = [s for s, cp in ((old, old_cp), (new, new_cp)) if cp is None]
        if missing:
            raise ApiError(
                404, "checkpoint_not_found", "no checkpoint of that size on chain", sizes=missing
            )
        if old > new:
            raise ApiError(422, "old_after_new", "old must not be larger than new")
        proof = services.log.consistency_proof(old, new)
    assert old_cp is not None and new_cp is not None
    return ConsistencyProofPublic(
        old_size=old,
        new_size=new,
        old_root="0x" + old_cp.root.hex(),
        new_root="0x" + new_cp.root.hex(),
        proof=["0x" + p.hex() for p in proof],
    )
