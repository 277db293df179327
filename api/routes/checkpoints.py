"""Checkpoints of the invoice log as anchored on chain, and consistency proofs between them."""

from __future__ import annotations

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.deps import LedgerReadsDep

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
def list_checkpoints(ledger: LedgerReadsDep) -> list[CheckpointPublic]:
    """Every checkpoint anchored on chain, oldest first (read from the contract's events)."""
    return [
        CheckpointPublic(
            size=cp.size,
            root="0x" + cp.root.hex(),
            block_number=cp.block_number,
            transaction="0x" + cp.transaction.hex(),
        )
        for cp in ledger.checkpoints()
    ]


@router.get("/consistency", response_model=ConsistencyProofPublic)
def consistency(
    ledger: LedgerReadsDep,
    old: int = Query(ge=1, le=MAX_SIZE),
    new: int = Query(ge=1, le=MAX_SIZE),
) -> ConsistencyProofPublic:
    """RFC 9162 consistency proof between two anchored checkpoints."""
    found = ledger.consistency(old, new)
    old_cp, new_cp, proof = found.old, found.new, found.proof
    return ConsistencyProofPublic(
        old_size=old,
        new_size=new,
        old_root="0x" + old_cp.root.hex(),
        new_root="0x" + new_cp.root.hex(),
        proof=["0x" + p.hex() for p in proof],
    )
