"""The ledger gateway: the one way the service reaches the chain and the invoice log.

py-evm and the log's SQLite connection are used from one thread at a time, so every method
takes the gateway's lock; no caller ever takes it. A step that must see the chain and the log
in one state (a void's proof against the checkpoint it is checked at, a settlement after its
reconciliation) is one method here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chain.abi import Event
from chain.factory import LedgerSession
from chain.invoice_log import InvoiceLog
from chain.model import Checkpoint, Hospital, HospitalLevel, InvoiceLeaf, InvoiceLedgerState
from chain.sequencer import Sequencer, SettlementOutcome, SettlementRequest


@dataclass(frozen=True)
class LedgerParts:
    """What the gateway holds, for ``LedgerGateway.exclusive``."""

    session: LedgerSession
    log: InvoiceLog
    sequencer: Sequencer


class LedgerGateway:
    """The ledger session, the invoice log and the sequencer behind one lock."""

    def __init__(self, session: LedgerSession, log: InvoiceLog, sequencer: Sequencer) -> None:
        self._session = session
        self._log = log
        self._sequencer = sequencer
        self._lock = threading.RLock()

    @contextmanager
    def exclusive(self) -> Iterator[LedgerParts]:
        """The raw ledger session, log and sequencer, under the lock, for tools and tests that
        act on the chain as someone else would (a payer's own client, an attacker) or look
        inside; the service itself never does."""
        with self._lock:
            yield LedgerParts(self._session, self._log, self._sequencer)

    def close(self) -> None:
        with self._lock:
            self._log.close()
            self._session.close()

    # -- what the ledger is ------------------------------------------------------------------

    @property
    def backend_name(self) -> str:
        return self._session.config.backend

    @property
    def chain_id(self) -> int:
        return self._session.backend.chain_id

    @property
    def address(self) -> str:
        """The contract's address."""
        return self._session.ledger.address

    @property
    def authority_address(self) -> str:
        return str(self._session.authority.address)

    @property
    def payers(self) -> tuple[str, ...]:
        """The payers the service holds an account for, by name."""
        return tuple(self._session.payers)

    def payer_address(self, payer: str) -> str:
        return str(self._session.payers[payer].address)

    @property
    def anchor_interval_ms(self) -> int:
        return self._sequencer.interval_ms

    def sign_as_authority(self, sign: Callable[[bytes], dict[str, Any]]) -> dict[str, Any]:
        """``sign(private_key)`` with the authority's key (the trust list's signature)."""
        return sign(bytes(self._session.authority.key))

    # -- reads -------------------------------------------------------------------------------

    def block_number(self) -> int:
        with self._lock:
            return self._session.backend.block_number()

    def block_timestamp(self, block_number: int) -> int:
        with self._lock:
            return self._session.backend.block_timestamp(block_number)

    def events(
        self, from_block: int = 0, to_block: int | None = None, name: str | None = None
    ) -> list[Event]:
        with self._lock:
            return self._session.ledger.events(from_block, to_block, name=name)

    def hospital(self, code: str) -> Hospital | None:
        with self._lock:
            return self._session.ledger.hospital(code)

    def checkpoint(self, size: int) -> Checkpoint | None:
        with self._lock:
            return self._session.ledger.checkpoint(size)

    def anchored(self) -> Checkpoint | None:
        """The latest checkpoint on chain (after checking the log agrees with it)."""
        with self._lock:
            return self._sequencer.anchored()

    def claim_state(self, invoice_id: bytes) -> InvoiceLedgerState:
        with self._lock:
            return self._session.ledger.claim_state(invoice_id)

    def claim_states(self, invoice_ids: Sequence[bytes]) -> dict[bytes, InvoiceLedgerState]:
        with self._lock:
            return {i: self._session.ledger.claim_state(i) for i in invoice_ids}

    def log_size(self) -> int:
        with self._lock:
            return self._log.size

    def leaf_hash(self, index: int) -> bytes:
        with self._lock:
            return self._log.leaf_hash(index)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        with self._lock:
            return self._log.inclusion_proof(index, size)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        with self._lock:
            return self._log.consistency_proof(old_size, new_size)

    def log_root(self, size: int | None = None) -> bytes:
        """The log's root at ``size`` leaves (now by default)."""
        with self._lock:
            return self._log.root(size)

    def log_entries(self, lo: int, hi: int) -> list[tuple[bytes, bytes]]:
        """The log's leaves ``lo`` to ``hi`` (excluded) as (invoice id, entry)."""
        with self._lock:
            return self._log.entries(lo, hi)

    # -- the registry (by the authority) -----------------------------------------------------

    def register_hospital(
        self, code: str, level: HospitalLevel, signer: str, valid_from: datetime
    ) -> None:
        with self._lock:
            s = self._session
            s.ledger.register_hospital(s.authority, code, level, signer, valid_from)

    def rotate_hospital_key(self, code: str, signer: str, valid_from: datetime) -> Hospital:
        """Adds a key; returns the hospital as the chain has it now."""
        with self._lock:
            s = self._session
            s.ledger.rotate_hospital_key(s.authority, code, signer, valid_from)
            hospital = s.ledger.hospital(code)
        assert hospital is not None
        return hospital

    def revoke_hospital_key(self, code: str, key_index: int, revoked_at: datetime) -> None:
        with self._lock:
            s = self._session
            s.ledger.revoke_hospital_key(s.authority, code, key_index, revoked_at)

    # -- the log and its checkpoints (by the sequencer) --------------------------------------

    def append(self, leaves: Sequence[InvoiceLeaf]) -> list[int]:
        """Appends leaves to the log; returns their indexes."""
        with self._lock:
            return self._sequencer.append(leaves)

    def anchor(self, force: bool = False) -> Checkpoint | None:
        """Anchors a checkpoint when one is due, or at once with ``force``."""
        with self._lock:
            return self._sequencer.anchor() if force else self._sequencer.anchor_if_due()

    def void(self, leaf: InvoiceLeaf, leaf_index: int, red: bytes, signature: bytes) -> None:
        """Relays a hospital's signed red-letter reversal, proven against a checkpoint that
        covers the leaf (anchored now if the latest one does not)."""
        with self._lock:
            cp = self._sequencer.anchored()
            if cp is None or leaf_index >= cp.size:
                cp = self._sequencer.anchor()
            assert cp is not None
            proof = self._log.inclusion_proof(leaf_index, cp.size)
            s = self._session
            s.ledger.void_invoice(s.sequencer, cp.size, leaf, leaf_index, proof, red, signature)

    # -- payers ------------------------------------------------------------------------------

    def lock_invoice(self, payer: str, invoice_id: bytes) -> None:
        with self._lock:
            self._session.ledger.lock_invoice(self._session.payers[payer], invoice_id)

    def release_invoice(self, payer: str, invoice_id: bytes) -> None:
        with self._lock:
            self._session.ledger.release_invoice(self._session.payers[payer], invoice_id)

    def settle(self, payer: str, requests: Sequence[SettlementRequest]) -> list[SettlementOutcome]:
        with self._lock:
            return self._sequencer.settle(self._session.payers[payer], requests)

    def settled_events(self) -> Iterator[Event]:
        """Every ``InvoiceSettled`` event, oldest first."""
        yield from self.events(name="InvoiceSettled")
