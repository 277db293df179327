"""The settle step: approved claims paid on chain, payer by payer in the payer order, in
batches, and their payments recorded.

Claims left ``settling`` by a crash are reconciled with the chain's ``InvoiceSettled`` events
before anything is sent again (never sent twice). A claim of a payer after basic insurance is
priced again when what it was priced after moved. The contract's cumulative cap refuses any
payment that would bring the total paid above the invoice amount, whatever the database says.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from api.adapters.metrics import SETTLEMENT_BATCH, SETTLEMENT_GAS
from api.db import models
from api.db.models import ClaimState
from api.db.queries import chunks, leaf_of
from api.flows import ports
from api.flows import totals as claim_totals
from api.flows.decide import FIRST_PAYER, Decider, Pending, pending, unpaid_of
from api.flows.explanation import explain
from api.flows.totals import TotalsConflict, is_race
from api.read.invoices import rows_by_id
from chain.errors import ContractRevert, InvoiceLocked, PaidAboveTotal
from chain.sequencer import SettlementRequest
from claims import CHINA_TZ

_log = logging.getLogger(__name__)

#: The event of a claim priced again at settlement (not a state: the claim stays settling).
REPRICED = "repriced"
#: Who writes the settlement's events.
ACTOR = "sequencer"


class SettleFlow:
    """Settles approved claims and records their payments."""

    def __init__(
        self,
        uow: ports.UnitOfWork,
        ledger: ports.Ledger,
        decider: Decider,
        clock: ports.Clock = ports.utc_now,
    ) -> None:
        self._uow = uow
        self._ledger = ledger
        self._decider = decider
        self._clock = clock
        # One settlement at a time in this process (only the sequencer's holder settles): a
        # second one would reconcile the first's claims in flight as if left by a crash.
        self._settlement = threading.Lock()

    def run(self) -> int:
        """Settles every approved claim on chain, payer by payer in the payer order, in
        batches; returns how many were paid. Claims left ``settling`` by a crash are
        reconciled with the chain first.

        A claim is taken by ``UPDATE ... WHERE state = 'approved'`` (nothing decided after
        pick-up, no claim taken by two workers). A claim of a payer after basic insurance is
        priced again when what it was priced after changed (an earlier payer paid more or
        less than expected, or was rejected); one the contract refuses for the cap or for
        another payer's lock goes back to ``approved`` to be priced again, never rejected for
        a figure that moves."""
        with self._settlement:
            self.reconcile()
            order = self._decider.payer_order
            payers = sorted(
                self._ledger.payers, key=lambda p: order.index(p) if p in order else len(order)
            )
            return sum(self._settle_payer(payer) for payer in payers)

    def _settle_payer(self, payer: str) -> int:
        rows = self._pick_up(payer)
        amounts = {r.id: r.amount_fen for r in rows}
        if rows and payer != FIRST_PAYER:
            amounts = self._repriced(rows)
        requests = [
            SettlementRequest(r.id, leaf_of(r), amounts[r.id], r.signature)
            for r in rows
            if r.id in amounts
        ]
        if not requests:
            return 0
        outcomes = self._ledger.settle(payer, requests)
        per_tx: dict[bytes, list[Any]] = {}
        for o in outcomes:
            if o.receipt is not None:
                per_tx.setdefault(o.receipt.tx_hash, []).append(o.receipt)
        for sent in per_tx.values():
            SETTLEMENT_BATCH.observe(len(sent))
            SETTLEMENT_GAS.inc(sent[0].gas_used)
        now = self._clock()
        with self._uow() as db:
            settled = {
                o.request.reference: o.receipt.tx_hash for o in outcomes if o.receipt is not None
            }
            mark_paid(db, settled, now)
            for outcome in outcomes:
                if outcome.receipt is None:
                    _refused(db, outcome.request.reference, outcome.error, now)
            db.commit()
        return len(settled)

    def _pick_up(self, payer: str) -> list[Any]:
        """The payer's approved claims with their invoices' leaves, moved to ``settling`` by a
        conditional update: only the rows this call moved are returned."""
        claim, invoice = models.Claim, models.Invoice
        settling = ClaimState.APPROVED.to(ClaimState.SETTLING)
        with self._uow() as db:
            rows = db.execute(
                select(
                    claim.id,
                    claim.amount_fen,
                    invoice.invoice_id,
                    invoice.record_hash,
                    invoice.hospital,
                    invoice.total,
                    invoice.signature,
                )
                .join(invoice, invoice.invoice_id == claim.invoice_id)
                .where(claim.state == ClaimState.APPROVED, claim.payer == payer)
                .order_by(claim.created_at)
            ).all()
            taken: set[str] = set()
            for chunk in chunks(rows):
                taken.update(
                    db.scalars(
                        update(claim)
                        .where(
                            claim.id.in_([r.id for r in chunk]),
                            claim.state == ClaimState.APPROVED,
                        )
                        .values(state=settling)
                        .returning(claim.id)
                        .execution_options(synchronize_session=False)
                    )
                )
            db.commit()
        return [r for r in rows if r.id in taken]

    def _repriced(self, rows: Sequence[Any]) -> dict[str, int]:
        """The amounts to send for these claims just taken (of one payer after basic): a claim
        whose basis (what the chain paid plus what earlier payers' unpaid claims will pay)
        moved since it was priced is priced again, with its yearly totals, in one
        transaction; one that now pays nothing is rejected (and sent nothing)."""
        states = self._ledger.claim_states([r.invoice_id for r in rows])
        on_chain = {invoice_id: state.paid for invoice_id, state in states.items()}
        amounts = {r.id: r.amount_fen for r in rows}
        now = self._clock()
        with self._uow() as db:
            stored = {
                c.id: c
                for c in db.scalars(select(models.Claim).where(models.Claim.id.in_(amounts)))
            }
            unpaid = unpaid_of(db, on_chain)
            wanted = {c.citizen_id for c in stored.values()}
            citizens = {
                c.id: c
                for c in db.scalars(select(models.Citizen).where(models.Citizen.id.in_(wanted)))
            }
            stale: list[tuple[models.Claim, Pending]] = []
            for claim in stored.values():
                p = pending(
                    0,
                    citizens[claim.citizen_id],
                    claim.payer,
                    claim.channel,
                    claim.invoice_id,
                    (),
                    on_chain[claim.invoice_id],
                )
                basis = p.paid_on_chain + self._decider.earlier_unpaid(unpaid, p)
                if claim.adjudication.get("already_paid_fen") != basis:
                    stale.append((claim, replace(p, paid_on_chain=basis)))
            if not stale:
                return amounts
            try:
                self._store_repriced(db, stale, amounts, now)
                db.commit()
            except (IntegrityError, OperationalError, TotalsConflict) as exc:
                if not is_race(exc):
                    raise
                # Totals moved by a concurrent claim: these wait for the next settlement.
                db.rollback()
                _log.warning("repricing raced a concurrent claim; retried at the next settlement")
                stale_ids = [c.id for c, _ in stale]
                db.execute(
                    update(models.Claim)
                    .where(
                        models.Claim.id.in_(stale_ids), models.Claim.state == ClaimState.SETTLING
                    )
                    .values(state=ClaimState.SETTLING.to(ClaimState.APPROVED))
                    .execution_options(synchronize_session=False)
                )
                db.commit()
                for claim_id in stale_ids:
                    amounts.pop(claim_id, None)
        return amounts

    def _store_repriced(
        self,
        db: Session,
        stale: Sequence[tuple[models.Claim, Pending]],
        amounts: dict[str, int],
        now: datetime,
    ) -> None:
        """Prices the ``stale`` claims again on their new basis (``Pending.paid_on_chain``):
        what each took of the yearly totals is given back and what it takes now is taken, its
        amount and explanation replaced (a ``repriced`` event, or ``rejected`` when it now
        pays nothing); ``amounts`` follows."""
        invoices = rows_by_id(db, {c.invoice_id for c, _ in stale})
        keys = {
            (c.citizen_id, c.payer, invoices[c.invoice_id].issued_at.astimezone(CHINA_TZ).year)
            for c, _ in stale
        }
        before = claim_totals.locked(db, keys)
        totals = {k: claim_totals.from_json(k[1], k[2], pools) for k, (pools, _) in before.items()}
        for claim, _ in stale:
            had = claim_totals.usage_of(claim)
            if had is not None and had[0] in totals:
                key, pool, deductible, paid = had
                totals[key] = totals[key].given_back(pool, deductible, paid)
        repriced = self._decider.reprice(db, [(p, c.created_at) for c, p in stale], totals)
        for (claim, p), (adjudication, taken) in zip(stale, repriced, strict=True):
            was = claim.amount_fen
            claim.adjudication = {**explain(adjudication), "usage": taken}
            claim.updated_at = now
            if taken is None:
                claim.state, claim.reason_code, claim.amount_fen = (
                    ClaimState(claim.state).to(ClaimState.REJECTED),
                    adjudication.reason.code,
                    0,
                )
                amounts.pop(claim.id)
            else:
                claim.amount_fen = amounts[claim.id] = adjudication.amount_fen
            db.add(
                models.ClaimEvent(
                    claim_id=claim.id,
                    at=now,
                    state=REPRICED if taken is not None else ClaimState.REJECTED,
                    actor=ACTOR,
                    detail={
                        "was_fen": was,
                        "amount_fen": claim.amount_fen,
                        "already_paid_fen": p.paid_on_chain,
                        "reason": adjudication.reason.code,
                    },
                )
            )
        claim_totals.store(
            db,
            {
                key: (pools, before[key][1] if key in before else None)
                for key, acc in totals.items()
                if (pools := claim_totals.to_json(acc)) != before.get(key, (None,))[0]
            },
        )

    def reconcile(self) -> None:
        """Claims left ``settling`` (by a crash between the chain's answer and the database's
        transaction): paid if the chain has their InvoiceSettled event, else approved again
        (never sent twice)."""
        with self._uow() as db:
            stuck = list(
                db.scalars(select(models.Claim).where(models.Claim.state == ClaimState.SETTLING))
            )
            if not stuck:
                return
            settled = {
                (e.args["invoice_id"], e.args["payer"]): e.tx_hash
                for e in self._ledger.settled_events()
            }
            found: dict[str, bytes] = {}
            for claim in stuck:
                tx = settled.get((claim.invoice_id, self._ledger.payer_address(claim.payer)))
                if tx is not None:
                    found[claim.id] = tx
                else:
                    claim.state = ClaimState(claim.state).to(ClaimState.APPROVED)
            db.flush()
            mark_paid(db, found, self._clock())
            db.commit()


def mark_paid(db: Session, settled: Mapping[str, bytes], now: datetime) -> None:
    """Marks the claims ``settled`` (claim id -> transaction) paid, with their events and
    one payment each (never a second: a claim already paid keeps its payment)."""
    if not settled:
        return
    ids = sorted(settled)
    amounts: dict[str, int] = {}
    has_payment: set[str] = set()
    for chunk in chunks(ids):
        amounts.update(
            {
                claim_id: amount
                for claim_id, amount in db.execute(
                    select(models.Claim.id, models.Claim.amount_fen).where(
                        models.Claim.id.in_(chunk)
                    )
                )
            }
        )
        has_payment.update(
            db.scalars(select(models.Payment.claim_id).where(models.Payment.claim_id.in_(chunk)))
        )
    assert set(amounts) == set(ids), "settled claims that are not stored"
    paid = ClaimState.SETTLING.to(ClaimState.PAID)
    db.execute(
        update(models.Claim),
        [
            {"id": claim_id, "state": paid, "settle_tx": settled[claim_id], "updated_at": now}
            for claim_id in ids
        ],
    )
    db.execute(
        insert(models.ClaimEvent),
        [
            {
                "claim_id": claim_id,
                "at": now,
                "state": state,
                "actor": ACTOR,
                "detail": {"tx": "0x" + settled[claim_id].hex()},
            }
            for claim_id in ids
            for state in (ClaimState.SETTLED, ClaimState.PAID)
        ],
    )
    new = [claim_id for claim_id in ids if claim_id not in has_payment]
    if new:
        db.execute(
            insert(models.Payment),
            [
                {
                    "claim_id": claim_id,
                    "amount_fen": amounts[claim_id],
                    "tx_hash": settled[claim_id],
                    "paid_at": now,
                }
                for claim_id in new
            ],
        )


def _refused(db: Session, claim_id: str, error: ContractRevert | None, now: datetime) -> None:
    """A payment the contract refused: back to ``approved`` when the refusal names a figure
    that moves (the cap, after an earlier payer paid: priced again at the next settlement;
    another payer's lock: paid once it is released), else ``rejected`` with the ledger's
    code, giving back what the claim took of the yearly totals."""
    claim = db.get(models.Claim, claim_id)
    assert claim is not None
    current = ClaimState(claim.state)
    if isinstance(error, InvoiceLocked) or (
        isinstance(error, PaidAboveTotal) and claim.payer != FIRST_PAYER
    ):
        claim.state, claim.updated_at = current.to(ClaimState.APPROVED), now
        return
    claim_totals.give_back(db, [claim])
    code = "ledger_" + (error.abi_name.removeprefix("Ledger") if error else "refused")
    claim.state, claim.reason_code, claim.updated_at = current.to(ClaimState.REJECTED), code, now
    db.add(
        models.ClaimEvent(
            claim_id=claim_id,
            at=now,
            state=ClaimState.REJECTED,
            actor=ACTOR,
            detail={"reason": code, "error": str(error)},
        )
    )
