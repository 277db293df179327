"""The ledger as clients and auditors read it: its EIP-712 domain, the checkpoints anchored on
chain, and consistency proofs between them."""

from __future__ import annotations

from dataclasses import dataclass

from api.flows import ports
from api.refusals import Invalid, NotFound
from chain.model import Checkpoint


@dataclass(frozen=True)
class LedgerIdentity:
    """The chain and contract every invoice signature is bound to, and who the authority is."""

    backend: str
    chain_id: int
    contract: str
    authority: str


@dataclass(frozen=True)
class AnchoredCheckpoint:
    """A checkpoint as its ``CheckpointAnchored`` event tells it."""

    size: int
    root: bytes
    block_number: int
    transaction: bytes


@dataclass(frozen=True)
class Consistency:
    """An RFC 9162 consistency proof between two anchored checkpoints."""

    old: Checkpoint
    new: Checkpoint
    proof: list[bytes]


class LedgerReads:
    """What a hospital client or an auditor needs to know about the ledger and its log."""

    def __init__(self, ledger: ports.Ledger) -> None:
        self._ledger = ledger

    def identity(self) -> LedgerIdentity:
        ledger = self._ledger
        return LedgerIdentity(
            ledger.backend_name, ledger.chain_id, ledger.address, ledger.authority_address
        )

    def checkpoints(self) -> list[AnchoredCheckpoint]:
        """Every checkpoint anchored on chain, oldest first (from the contract's events)."""
        return [
            AnchoredCheckpoint(e.args["size"], e.args["root"], e.block_number, e.tx_hash)
            for e in self._ledger.events(name="CheckpointAnchored")
        ]

    def consistency(self, old: int, new: int) -> Consistency:
        """The consistency proof from checkpoint ``old`` to ``new``. Raises ``NotFound``
        (``checkpoint_not_found``, naming the missing ``sizes``) and ``Invalid``
        (``old_after_new``)."""
        old_cp, new_cp = self._ledger.checkpoint(old), self._ledger.checkpoint(new)
        missing = [s for s, cp in ((old, old_cp), (new, new_cp)) if cp is None]
        if missing:
            raise NotFound(
                "checkpoint_not_found", "no checkpoint of that size on chain", sizes=missing
            )
        if old > new:
            raise Invalid("old_after_new", "old must not be larger than new")
        assert old_cp is not None and new_cp is not None
        return Consistency(old_cp, new_cp, self._ledger.consistency_proof(old, new))
