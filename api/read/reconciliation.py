"""Reconciliation of the database against the chain, for auditors who do not trust either
alone: the log is recomputed from the database's invoice rows and every checkpoint root on
chain is compared with it; payments are compared from both sides, every payment row of the
database with what the chain paid that claim, and every ``InvoiceSettled`` event on chain with
the database's payment of that claim, so a payment row deleted, changed or invented shows; and
each invoice's paid amount on chain with the database's payments of it. A tampered database row
shows up as the first checkpoint whose root differs."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from api.db import models
from api.db.queries import leaf_of
from api.flows import ports
from chain import merkle
from chain.abi import Event


@dataclass
class Reconciliation:
    checkpoints_checked: int = 0
    log_size_in_database: int = 0
    anchored_size_on_chain: int = 0
    pending_invoices: int = 0
    checkpoint_mismatches: list[dict[str, Any]] = field(default_factory=list)
    changed_invoices: list[dict[str, Any]] = field(default_factory=list)
    payment_mismatches: list[dict[str, Any]] = field(default_factory=list)
    payments_checked: int = 0
    payments_in_flight: list[str] = field(default_factory=list)

    @property
    def consistent(self) -> bool:
        return not (self.checkpoint_mismatches or self.payment_mismatches or self.changed_invoices)

    def as_json(self) -> dict[str, Any]:
        return {"consistent": self.consistent, **self.__dict__}


class Reconciler:
    """The database against the chain (see the module's docstring)."""

    def __init__(self, uow: ports.UnitOfWork, ledger: ports.Ledger) -> None:
        self._uow = uow
        self._ledger = ledger

    def reconcile(self) -> Reconciliation:
        """Every checkpoint, payment and paid amount compared; what differs is listed."""
        return _reconcile(self._uow, self._ledger)


def _reconcile(uow: ports.UnitOfWork, ledger: ports.Ledger) -> Reconciliation:
    result = Reconciliation()
    with uow() as db:
        rows = db.execute(
            select(
                models.Invoice.leaf_index,
                models.Invoice.invoice_id,
                models.Invoice.record_hash,
                models.Invoice.hospital,
                models.Invoice.total,
            )
            .where(models.Invoice.leaf_index.is_not(None))
            .order_by(models.Invoice.leaf_index)
        ).all()
        result.pending_invoices = len(
            db.scalars(
                select(models.Invoice.invoice_id).where(models.Invoice.leaf_index.is_(None))
            ).all()
        )
        claims = db.execute(
            select(
                models.Claim.invoice_id,
                models.Claim.payer,
                models.Claim.id,
                models.Claim.state,
                models.Payment.amount_fen,
            ).outerjoin(models.Payment, models.Payment.claim_id == models.Claim.id)
        ).all()
    entries = [leaf_of(r).entry() for r in rows]
    result.log_size_in_database = len(entries)
    levels = merkle.MerkleLevels(entries) if entries else None
    # Leaves 0..contiguous-1 are all in the database; a checkpoint beyond that cannot match.
    contiguous = next((i for i, r in enumerate(rows) if r.leaf_index != i), len(rows))
    events = ledger.events(name="CheckpointAnchored")
    for event in events:
        size, root = event.args["size"], event.args["root"]
        result.checkpoints_checked += 1
        result.anchored_size_on_chain = max(result.anchored_size_on_chain, size)
        if levels is None or size > contiguous:
            result.checkpoint_mismatches.append(
                {
                    "size": size,
                    "chain_root": "0x" + root.hex(),
                    "database_root": None,
                    "reason": "the database has fewer leaves than the checkpoint",
                }
            )
            continue
        mine = levels.range_hash(0, size)
        if mine != root:
            result.checkpoint_mismatches.append(
                {
                    "size": size,
                    "chain_root": "0x" + root.hex(),
                    "database_root": "0x" + mine.hex(),
                    "reason": "a leaf below this size differs from what was anchored",
                }
            )
    if result.checkpoint_mismatches:
        result.changed_invoices = _changed_invoices(ledger, rows, events)
    _compare_payments(ledger, result, claims)
    return result


def _compare_payments(ledger: ports.Ledger, result: Reconciliation, claims: Sequence[Any]) -> None:
    """Payments from both sides, claim by claim (invoice and payer), then invoice by invoice.

    A claim is compared when the database has its payment or the chain has settled it; the
    claim is taken as paid in flight (listed, not a mismatch) when it is ``settling`` and the
    chain paid it: settlement records the payment as soon as the transaction returns, and the
    next settlement round does so after a crash."""
    events = ledger.events(name="InvoiceSettled")
    payers = {ledger.payer_address(name): name for name in ledger.payers}
    on_chain: dict[tuple[bytes, str], int] = defaultdict(int)
    for event in events:
        payer = payers.get(event.args["payer"], event.args["payer"])
        on_chain[(event.args["invoice_id"], payer)] += event.args["amount"]
    stored = {(c.invoice_id, c.payer): c for c in claims}
    database_paid: dict[bytes, int] = defaultdict(int)
    for key in sorted(set(on_chain) | {k for k, c in stored.items() if c.amount_fen is not None}):
        invoice_id, payer = key
        claim, chain_paid = stored.get(key), on_chain.get(key)
        mine = claim.amount_fen if claim is not None else None
        if mine is None and claim is not None and claim.state == models.ClaimState.SETTLING:
            result.payments_in_flight.append(claim.id)
            database_paid[invoice_id] += chain_paid or 0
            continue
        result.payments_checked += 1
        database_paid[invoice_id] += mine or 0
        if mine == chain_paid:
            continue
        result.payment_mismatches.append(
            {
                "invoice_id": "0x" + invoice_id.hex(),
                "claim_id": claim.id if claim is not None else None,
                "payer": payer,
                "database_paid": mine,
                "chain_paid": chain_paid,
                "reason": _why(claim is not None, mine, chain_paid),
            }
        )
    for invoice_id, amount in sorted(database_paid.items()):
        paid = ledger.claim_state(invoice_id).paid
        if paid != amount:
            result.payment_mismatches.append(
                {
                    "invoice_id": "0x" + invoice_id.hex(),
                    "claim_id": None,
                    "payer": None,
                    "database_paid": amount,
                    "chain_paid": paid,
                    "reason": "the invoice's paid amount on chain differs from its payments",
                }
            )


def _why(claimed: bool, database_paid: int | None, chain_paid: int | None) -> str:
    if not claimed:
        return "the chain paid a claim the database does not have"
    if database_paid is None:
        return "the chain paid this claim and the database has no payment of it"
    if chain_paid is None:
        return "the database has a payment the chain never made"
    return "the database and the chain paid different amounts"


def _changed_invoices(
    ledger: ports.Ledger, rows: Sequence[Any], events: Sequence[Event]
) -> list[dict[str, Any]]:
    """Which invoices differ from what was anchored: the log's leaves up to the latest
    checkpoint whose root the log reproduces (so the log is what the chain anchored there)
    compared with the leaves recomputed from the database, and the leaves the database lost."""
    size = ledger.log_size()  # the log only grows: a root read below this size stays true
    trusted = max(
        (
            e.args["size"]
            for e in events
            if e.args["size"] <= size and ledger.log_root(e.args["size"]) == e.args["root"]
        ),
        default=0,
    )
    anchored = ledger.log_entries(0, trusted)
    mine = {r.leaf_index: r for r in rows}
    changed = []
    for index, (invoice_id, entry) in enumerate(anchored):
        row = mine.get(index)
        if row is None or row.invoice_id != invoice_id:
            changed.append(
                {"leaf_index": index, "invoice_id": "0x" + invoice_id.hex(), "change": "missing"}
            )
        elif leaf_of(row).entry() != entry:
            changed.append(
                {"leaf_index": index, "invoice_id": "0x" + invoice_id.hex(), "change": "altered"}
            )
    return changed
