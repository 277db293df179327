"""The sequencer: appends invoice leaves to the log, anchors checkpoints, settles in batches.

Idempotent by construction, so that a crash at any point followed by a re-run does nothing
twice:
- appending is keyed by invoice id in the log (a re-appended leaf gets its old index back);
- anchoring first reads the latest checkpoint on chain and only anchors a larger size, after
  proving that the chain's checkpoint is a prefix of our log (same root at that size);
- settlement requests carry the claim's reference; the caller records the receipt and a re-run
  of an already settled claim is refused by the contract's cumulative cap, never paid twice.

One sequencer runs at a time (the service holds a database lock around it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from eth_account.signers.local import LocalAccount

from chain import merkle
from chain.backend import TxReceipt
from chain.errors import ContractRevert, LedgerError
from chain.invoice_log import InvoiceLog
from chain.ledger import Ledger
from chain.model import Checkpoint, InvoiceLeaf, Settlement


class LogDiverged(LedgerError):
    """Raised when the chain's latest checkpoint is not a prefix of the local log.

    Either the log lost leaves (restored from an old backup) or it was tampered with; the
    sequencer stops rather than anchor a conflicting history.
    """

    def __init__(self, checkpoint: Checkpoint, log_size: int, log_root: bytes | None) -> None:
        detail = (
            "the log is shorter"
            if log_root is None
            else f"the log's root there is 0x{log_root.hex()}"
        )
        super().__init__(
            f"chain checkpoint size {checkpoint.size} root 0x{checkpoint.root.hex()} does not "
            f"match the local log of size {log_size}: {detail}"
        )
        self.checkpoint = checkpoint
        self.log_size = log_size
        self.log_root = log_root


@dataclass(frozen=True)
class SettlementRequest:
    """A payment to settle: ``reference`` is the caller's claim id, echoed in the outcome;
    ``signature`` is the hospital's signature of the invoice, which the contract checks."""

    reference: str
    leaf: InvoiceLeaf
    amount: int  # fen
    signature: bytes


@dataclass(frozen=True)
class SettlementOutcome:
    """The result of one request: a receipt when settled, the contract's error when refused."""

    request: SettlementRequest
    receipt: TxReceipt | None = None
    error: ContractRevert | None = None

    @property
    def settled(self) -> bool:
        return self.receipt is not None


class Sequencer:
    """Drives the log and the chain. ``batch_size`` leaves or ``interval_ms`` of waiting make
    a checkpoint due; ``settle_batch_size`` payments go in one transaction. ``log`` is any
    store of ``chain.invoice_log.InvoiceLog`` (``chain.log.MerkleLog`` in SQLite)."""

    def __init__(
        self,
        log: InvoiceLog,
        ledger: Ledger,
        account: LocalAccount,
        batch_size: int = 1024,
        interval_ms: int = 2000,
        settle_batch_size: int = 500,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if batch_size < 1 or settle_batch_size < 1 or interval_ms < 0:
            raise ValueError("batch sizes must be positive and the interval non-negative")
        self.log = log
        self.ledger = ledger
        self.account = account
        self.batch_size = batch_size
        self.interval_ms = interval_ms
        self.settle_batch_size = settle_batch_size
        self._clock = clock
        self._last_anchor_at = clock()
        self._anchored: Checkpoint | None = None

    # -- log and checkpoints ------------------------------------------------------------------

    def append(self, leaves: Sequence[InvoiceLeaf]) -> list[int]:
        """Appends leaves (idempotent by invoice id) and returns their indexes."""
        return self.log.append([(leaf.invoice_id, leaf.entry()) for leaf in leaves])

    def anchored(self) -> Checkpoint | None:
        """The latest checkpoint on chain, checked to be a prefix of the local log."""
        if self._anchored is None:
            latest = self.ledger.latest_checkpoint()
            if latest is not None:
                self._check_prefix(latest)
            self._anchored = latest
        return self._anchored

    def _check_prefix(self, checkpoint: Checkpoint) -> None:
        if checkpoint.size > self.log.size:
            raise LogDiverged(checkpoint, self.log.size, None)
        root = self.log.root(checkpoint.size)
        if root != checkpoint.root:
            raise LogDiverged(checkpoint, self.log.size, root)

    def pending_leaves(self) -> int:
        """Leaves in the log that no anchored checkpoint covers yet."""
        anchored = self.anchored()
        return self.log.size - (anchored.size if anchored else 0)

    def anchor_due(self) -> bool:
        pending = self.pending_leaves()
        if pending >= self.batch_size:
            return True
        waited_ms = (self._clock() - self._last_anchor_at) * 1000
        return pending > 0 and waited_ms >= self.interval_ms

    def anchor(self) -> Checkpoint | None:
        """Anchors the whole log as one checkpoint unless the chain has it already.

        Returns the new checkpoint, or None when there was nothing to anchor.
        """
        if self.pending_leaves() == 0:
            return None
        checkpoint = Checkpoint(self.log.size, self.log.root())
        self.ledger.anchor_checkpoint(self.account, checkpoint)
        self._anchored = checkpoint
        self._last_anchor_at = self._clock()
        return checkpoint

    def anchor_if_due(self) -> Checkpoint | None:
        return self.anchor() if self.anchor_due() else None

    def ingest(self, leaves: Sequence[InvoiceLeaf]) -> list[Checkpoint]:
        """Appends leaves in slices of ``batch_size`` and anchors each full slice."""
        checkpoints = []
        for start in range(0, len(leaves), self.batch_size):
            self.append(leaves[start : start + self.batch_size])
            anchored = self.anchor_if_due()
            if anchored is not None:
                checkpoints.append(anchored)
        return checkpoints

    # -- settlement ---------------------------------------------------------------------------

    def settle(
        self, payer: LocalAccount, requests: Sequence[SettlementRequest]
    ) -> list[SettlementOutcome]:
        """Settles requests for one payer in batches, against the latest checkpoint.

        Leaves not yet covered by a checkpoint get one first. A batch is all-or-nothing on
        chain: when the contract refuses one payment, that request gets the error and the
        rest of its batch is sent again without it.
        """
        missing = [r.reference for r in requests if self.log.index_of(r.leaf.invoice_id) is None]
        if missing:
            raise LedgerError(f"settlement of invoices not in the log: {missing}")
        if self.pending_leaves() > 0:
            self.anchor()
        checkpoint = self.anchored()
        assert checkpoint is not None  # every requested leaf is in the log, now anchored
        outcomes: list[SettlementOutcome] = []
        for batch in self._batches(requests):
            outcomes.extend(self._settle_batch(payer, checkpoint, batch))
        return outcomes

    def _batches(self, requests: Sequence[SettlementRequest]) -> list[list[SettlementRequest]]:
        """Consecutive batches of at most ``settle_batch_size``, an invoice at most once in
        each, so that a refusal always names exactly one request."""
        batches: list[list[SettlementRequest]] = [[]]
        seen: set[bytes] = set()
        for request in requests:
            if len(batches[-1]) >= self.settle_batch_size or request.leaf.invoice_id in seen:
                batches.append([])
                seen.clear()
            batches[-1].append(request)
            seen.add(request.leaf.invoice_id)
        return [b for b in batches if b]

    def _settle_batch(
        self, payer: LocalAccount, checkpoint: Checkpoint, batch: list[SettlementRequest]
    ) -> list[SettlementOutcome]:
        refused: list[SettlementOutcome] = []
        while batch:
            settlements = self._prove_batch(batch, checkpoint)
            try:
                receipt = self.ledger.settle_batch(payer, checkpoint.size, settlements)
            except ContractRevert as error:
                culprit = self._culprit(batch, error)
                if culprit is None:
                    raise
                refused.append(SettlementOutcome(batch[culprit], error=error))
                del batch[culprit]
                continue
            return [SettlementOutcome(r, receipt=receipt) for r in batch] + refused
        return refused

    def _prove_batch(
        self, batch: Sequence[SettlementRequest], checkpoint: Checkpoint
    ) -> list[Settlement]:
        """The batch's settlements, each proof cut where it meets an earlier one: the
        contract remembers the nodes it proved in the transaction, so shared upper levels of
        the tree are sent and hashed once per batch."""
        whole = [self.prove(r, checkpoint) for r in batch]
        cut = merkle.cut_shared_proofs(checkpoint.size, [(s.leaf_index, s.proof) for s in whole])
        return [replace(s, proof=tuple(p)) for s, p in zip(whole, cut, strict=True)]

    def prove(self, request: SettlementRequest, checkpoint: Checkpoint) -> Settlement:
        """The settlement of a request with its inclusion proof against ``checkpoint``."""
        index = self.log.index_of(request.leaf.invoice_id)
        assert index is not None
        proof = tuple(self.log.inclusion_proof(index, checkpoint.size))
        return Settlement(request.leaf, index, proof, request.amount, request.signature)

    @staticmethod
    def _culprit(batch: list[SettlementRequest], error: ContractRevert) -> int | None:
        invoice_id = getattr(error, "invoice_id", None)
        if invoice_id is None:
            return None
        return next((i for i, r in enumerate(batch) if r.leaf.invoice_id == invoice_id), None)
