"""The claim flow: a citizen's one-tap claim through verification, adjudication, smart audit,
manual review and settlement on chain, to the payment.

States: submitted -> verified -> adjudicated -> approved | in_review | rejected;
in_review -> approved | rejected (by a reviewer); approved -> settling -> settled -> paid,
or rejected when the ledger refuses the payment. Every step is a ``ClaimEvent``.

No double payment, by construction in three places: one claim per (invoice, payer) in the
database (a unique constraint, so two simultaneous claims give one claim and one refusal);
the payer's lock on chain while a claim waits for review; and the contract's cumulative cap,
which refuses any payment that would bring the total paid above the invoice amount, whatever
the database says. A settlement batch interrupted by a crash is reconciled with the chain's
``InvoiceSettled`` events before anything is sent again.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import CursorResult, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from api.adapters.metrics import CLAIMS_SUBMITTED, SETTLEMENT_BATCH, SETTLEMENT_GAS
from api.adapters.workers import WorkerPool
from api.bootstrap import Services
from api.db import models
from api.flows import totals as claim_totals
from api.flows.decide import (
    FIRST_PAYER,
    ClaimRefused,
    Decided,
    Decider,
    Decisions,
    Pending,
    claims_of,
    decide_in_worker,
    explain,
    readable,
    refuse_duplicate,
    start_worker,
    unpaid_of,
)
from api.flows.totals import TotalsConflict
from api.flows.verify import VerificationService
from api.flows.verify_failures import guessed_wrong
from api.read.invoices import (
    BillReference,
    InvoiceKeyAmbiguous,
    invoice_key,
    patients_invoice_ids,
    payload_of,
    rows_by_id,
)
from chain.errors import ContractRevert, InvoiceLocked, LedgerError, PaidAboveTotal
from chain.model import InvoiceLeaf
from chain.sequencer import SettlementRequest
from claims import CHINA_TZ
from verifier.pipeline import Verdict
from verifier.qr import encode_payload

_log = logging.getLogger(__name__)

#: Batches of at least this many verified claims are decided on two cores.
PARALLEL_THRESHOLD = 256

STATES = (
    "submitted",
    "verified",
    "adjudicated",
    "in_review",
    "approved",
    "settling",
    "settled",
    "paid",
    "rejected",
)


@dataclass(frozen=True)
class ClaimRequest:
    """One claim to submit: whose, what names the invoice (an invoice id or reference for the
    app's one tap, a QR text, or a photo's bytes), from which payer, through which channel."""

    citizen: models.Citizen
    source: str | bytes
    payer: str
    channel: str


def _not_found() -> ClaimRefused:
    return ClaimRefused(404, "invoice_not_found", "no such invoice of yours")


def _pending(i: int, request: ClaimRequest, verdict: Verdict, row: models.Invoice) -> Pending:
    citizen = request.citizen
    return Pending(
        i,
        citizen.id,
        citizen.id_number_hash,
        citizen.sex,
        citizen.birth_date,
        citizen.assistance_eligible,
        request.payer,
        request.channel,
        row.invoice_id,
        tuple(s.code for s in verdict.steps),
        int(verdict.steps[-1].details["paid"]),  # what the status step read on chain
    )


class _LockTaken(Exception):
    """Raised when a claim of a batch going to review cannot take the payer's lock on chain
    (another payer took it since verification): the batch is taken again one by one."""


def _lock_refusal(invoice_id: bytes, locked_by: str) -> ClaimRefused:
    return ClaimRefused(
        409,
        "invoice_locked",
        "another payer holds this invoice for review; claim again once it has decided",
        invoice_id="0x" + invoice_id.hex(),
        locked_by=locked_by,
    )


class ClaimService:
    """Submits, reviews and settles claims."""

    def __init__(
        self,
        services: Services,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        workers: int | None = None,
    ) -> None:
        self._services = services
        self.clock = clock
        self._decider = Decider(services.sessions)
        self.policies = self._decider.policies
        # One worker: this process verifies and decides too (see :meth:`_parts`).
        self._pool = WorkerPool(1, initializer=start_worker, initargs=(services.settings.database,))
        self._parallel = (workers if workers is not None else (os.cpu_count() or 1)) >= 2
        # One settlement at a time in this process (only the sequencer's holder settles): a
        # second one would reconcile the first's claims in flight as if left by a crash.
        self._settlement = threading.Lock()

    def close(self) -> None:
        self._pool.close()

    # -- submission ---------------------------------------------------------------------------

    def submit(
        self, citizen: models.Citizen, source: str | bytes, payer: str, channel: str
    ) -> models.Claim:
        """A claim of the invoice named by ``source`` (an invoice id or reference for the
        app's one tap, a QR text, or a photo's bytes) from ``payer``; raises ``ClaimRefused``.

        Two claims of one citizen with one payer at the same moment race for the yearly
        accumulator; the loser is adjudicated again on the winner's totals."""
        request = ClaimRequest(citizen, source, payer, channel)
        for attempt in range(3):
            try:
                (outcome,) = self._submit_batch([request])
            except (IntegrityError, OperationalError, TotalsConflict):
                if attempt == 2:
                    raise
                continue
            if isinstance(outcome, ClaimRefused):
                raise outcome
            return outcome
        raise AssertionError("unreachable")

    def submit_many(self, requests: Sequence[ClaimRequest]) -> list[models.Claim | ClaimRefused]:
        """Claims that arrive together (an office's batch, a payer's import), each checked
        exactly as by :meth:`submit`, in order: a later claim sees the earlier ones (a second
        claim of an invoice from one payer is a duplicate, another payer waits for basic
        insurance, one citizen's yearly totals add up). Invoices, lines, history and totals
        are loaded once for the batch, and the batch is stored in one transaction; when a
        concurrent claim wins a race, the batch is taken again one claim at a time."""
        try:
            return self._submit_batch(requests)
        except (IntegrityError, OperationalError, TotalsConflict, _LockTaken):
            if len(requests) == 1:
                raise
        outcomes: list[models.Claim | ClaimRefused] = []
        for r in requests:
            try:
                outcomes.append(self.submit(r.citizen, r.source, r.payer, r.channel))
            except ClaimRefused as exc:
                outcomes.append(exc)
        return outcomes

    def _submit_batch(self, requests: Sequence[ClaimRequest]) -> list[models.Claim | ClaimRefused]:
        services = self._services
        now = self.clock()
        outcomes: list[models.Claim | ClaimRefused | None] = [None] * len(requests)
        # Parts by citizen (every claim of an invoice is its patient's, so each part decides
        # exactly as the whole batch would): each worker part is verified here and handed to
        # the worker process, which decides it while this process verifies the next; this
        # process decides the last part itself, then stores everything.
        parts = self._parts(requests)
        futures = []
        verified_all: dict[int, tuple[Verdict, models.Invoice]] = {}
        added_all: dict[bytes, int] = {}
        decisions = Decisions()
        for n, indexes in enumerate(parts):
            verified, counted = self._verified(requests, indexes, outcomes)
            self._refuse_locked(requests, verified, outcomes)
            verified_all.update(verified)
            added: dict[bytes, int] = {}
            for invoice_id in counted:
                added[invoice_id] = added.get(invoice_id, 0) + 1
                added_all[invoice_id] = added_all.get(invoice_id, 0) + 1
            pending = [
                _pending(i, requests[i], verdict, row) for i, (verdict, row) in verified.items()
            ]
            if n < len(parts) - 1:
                futures.append(self._pool.submit(decide_in_worker, pending, added, now))
            else:
                decisions = self._decider.decide(pending, added, now)
        for future in futures:
            decisions = decisions.merged(future.result())
        verified, added = verified_all, added_all
        decided = sorted(decisions.outcomes, key=lambda o: o[0])
        totals = decisions.totals
        # Lock, then store: a claim going to review holds its payer's lock on chain before it
        # is stored, and the locks of claims that end up not stored are released.
        locks, refused = self._take_locks(len(requests), decided, outcomes)
        if refused:
            decided, totals = [], {}  # a lone claim refused for the lock: nothing of it stored
        events: list[dict[str, Any]] = []  # inserted as rows: no ORM bookkeeping needed
        stored = False
        try:
            with services.sessions() as db:
                for i, outcome in decided:
                    if isinstance(outcome, ClaimRefused):
                        outcomes[i] = outcome
                        continue
                    claim = models.Claim(**outcome.claim)
                    db.add(claim)
                    events.extend(outcome.events)
                    outcomes[i] = claim
                try:
                    db.flush()  # claims first: their events refer to them
                    if events:
                        db.execute(insert(models.ClaimEvent), events)
                    claim_totals.store(db, totals)
                    VerificationService.add_counts(db, added, now)
                    db.commit()
                    stored = True
                except IntegrityError:
                    # A concurrent claim of the same invoice and payer won: the unique
                    # (invoice, payer) constraint decides the race.
                    db.rollback()
                    if len(requests) == 1 and verified:
                        ((_, row),) = verified.values()
                        with services.sessions() as fresh:
                            claims_now = claims_of(fresh, [row.invoice_id])
                        refuse_duplicate(claims_now, row.invoice_id, requests[0].payer)
                    raise
        finally:
            if not stored:
                self._release_unstored(locks)
        for o in outcomes:
            assert o is not None
            CLAIMS_SUBMITTED.labels(o.code if isinstance(o, ClaimRefused) else o.state).inc()
        return outcomes  # type: ignore[return-value]

    def _refuse_locked(
        self,
        requests: Sequence[ClaimRequest],
        verified: dict[int, tuple[Verdict, models.Invoice]],
        outcomes: list[models.Claim | ClaimRefused | None],
    ) -> None:
        """Refuses, before anything is decided or stored, the claims of invoices that another
        payer holds locked on chain for review (as the status step read it)."""
        payers = self._services.session.payers
        for i, (verdict, row) in list(verified.items()):
            locked_by = verdict.steps[-1].details.get("locked_by")
            if locked_by and locked_by != payers[requests[i].payer].address:
                outcomes[i] = _lock_refusal(row.invoice_id, str(locked_by))
                del verified[i]

    def _take_locks(
        self,
        batch_size: int,
        decided: Sequence[tuple[int, Decided | ClaimRefused]],
        outcomes: list[models.Claim | ClaimRefused | None],
    ) -> tuple[list[tuple[str, bytes]], bool]:
        """Takes the payer's lock on chain for every decided claim going to review; returns the
        locks taken, and whether a lone claim was refused for the lock (its refusal is then in
        ``outcomes``): another payer took the lock since verification. In a batch (whose later
        claims counted on the refused one) the locks are released and ``_LockTaken`` raised."""
        services = self._services
        taken: list[tuple[str, bytes]] = []
        refused = False
        try:
            for i, outcome in decided:
                if isinstance(outcome, ClaimRefused) or outcome.claim["state"] != "in_review":
                    continue
                payer, invoice_id = outcome.claim["payer"], outcome.claim["invoice_id"]
                try:
                    with services.lock:
                        services.session.ledger.lock_invoice(
                            services.session.payers[payer], invoice_id
                        )
                except InvoiceLocked as exc:
                    if batch_size > 1:
                        raise _LockTaken(invoice_id) from exc
                    outcomes[i] = _lock_refusal(invoice_id, str(exc.args_by_name["locked_by"]))
                    refused = True
                    continue
                taken.append((payer, invoice_id))
        except BaseException:
            self._release_unstored(taken)
            raise
        return taken, refused

    def _release_unstored(self, locks: Sequence[tuple[str, bytes]]) -> None:
        """Releases the locks taken for claims that were not stored, unless a stored claim in
        review of the same payer holds it (a concurrent twin that won the race)."""
        services = self._services
        if not locks:
            return
        with services.sessions() as db:
            held = set(
                db.execute(
                    select(models.Claim.payer, models.Claim.invoice_id).where(
                        models.Claim.invoice_id.in_([i for _, i in locks]),
                        models.Claim.state == "in_review",
                    )
                ).tuples()
            )
        for payer, invoice_id in locks:
            if (payer, invoice_id) in held:
                continue
            try:
                with services.lock:
                    services.session.ledger.release_invoice(
                        services.session.payers[payer], invoice_id
                    )
            except LedgerError:  # left held: logged, and the payer may release it by hand
                _log.exception("could not release the lock of 0x%s", invoice_id.hex())

    def _parts(self, requests: Sequence[ClaimRequest]) -> list[list[int]]:
        """The batch's positions in parts by citizen, the worker's first and this process's
        last; one part when the batch is small or there is one core. This process verifies
        every part and stores the batch, so it decides one citizen in five."""
        if len(requests) < PARALLEL_THRESHOLD or not self._parallel:
            return [list(range(len(requests)))]
        parts: list[list[int]] = [[] for _ in range(5)]
        for i, request in enumerate(requests):
            parts[request.citizen.id % 5].append(i)
        return [p for p in parts[1:] if p] + [parts[0]]

    def _verified(
        self,
        requests: Sequence[ClaimRequest],
        indexes: Sequence[int],
        outcomes: list[models.Claim | ClaimRefused | None],
    ) -> tuple[dict[int, tuple[Verdict, models.Invoice]], list[bytes]]:
        """Of the requests at ``indexes``: the verdict and stored invoice of each that
        verifies and names an invoice of its citizen, by position, and the invoice id of every
        successful verification made by a citizen (each counts, as in
        :meth:`VerificationService.verify`; staff's at the office do not); every other request
        gets its refusal in ``outcomes``. A source that finds no bill (a wrong check code
        included) and one that names someone else's invoice, verified or not, are refused
        exactly as an unknown invoice: the refusal tells nothing of a bill one cannot show."""
        services = self._services
        payers = sorted(set(self.policies) & set(services.session.payers))
        keys: dict[int, bytes | BillReference | InvoiceKeyAmbiguous | None] = {}
        for i in indexes:
            source = requests[i].source
            keys[i] = invoice_key(source) if isinstance(source, str) else None
        with services.sessions() as db:
            # a bare BILLCODE-BILLNUMBER names the citizen's own invoice of that number
            patients = {i: requests[i].citizen.id_number_hash for i in keys}
            keys.update(patients_invoice_ids(db, keys, patients))
            rows = rows_by_id(db, [k for k in keys.values() if isinstance(k, bytes)])
        sources: list[tuple[int, str | bytes]] = []
        for i, key in keys.items():
            request = requests[i]
            if request.payer not in payers:
                outcomes[i] = ClaimRefused(
                    422, "unknown_payer", f"no payer {request.payer!r}", payers=payers
                )
            elif key is None:
                sources.append((i, request.source))
            elif isinstance(key, InvoiceKeyAmbiguous):
                outcomes[i] = ClaimRefused(409, "invoice_key_ambiguous", str(key))
            elif key not in rows:
                outcomes[i] = _not_found()
            else:  # one tap: the invoice's own fingerprint goes through every step
                sources.append((i, encode_payload(payload_of(services.domain, rows[key]))))
        verdicts = services.verification.verify_many([s for _, s in sources], rows)
        named = {v.invoice_id for v in verdicts if v.invoice_id is not None} - set(rows)
        if named:
            with services.sessions() as db:
                rows.update(rows_by_id(db, named))
        verified: dict[int, tuple[Verdict, models.Invoice]] = {}
        for (i, _), verdict in zip(sources, verdicts, strict=True):
            row = rows.get(verdict.invoice_id)  # type: ignore[arg-type]
            theirs = row is not None and row.patient_id_hash != requests[i].citizen.id_number_hash
            if guessed_wrong(verdict) or theirs:
                outcomes[i] = _not_found()
                continue
            if not verdict.valid:
                failed = next(s for s in verdict.steps if s.status == "failed")
                outcomes[i] = ClaimRefused(
                    422,
                    "verification_failed",
                    failed.message_en,
                    step=failed.step,
                    step_code=failed.code,
                    message_zh=failed.message_zh,
                )
                continue
            if row is None:
                outcomes[i] = _not_found()
                continue
            verified[i] = (verdict, row)
        counted = [
            verdict.invoice_id
            for (i, _), verdict in zip(sources, verdicts, strict=True)
            if verdict.valid and verdict.invoice_id is not None and requests[i].channel != "office"
        ]
        return verified, counted

    # -- review -------------------------------------------------------------------------------

    def review(self, claim_id: str, approve: bool, reviewer: str, reason: str | None) -> None:
        """A reviewer's decision on a claim in review; rejecting gives back what the claim took
        of the citizen's yearly totals and releases the payer's lock.

        One decision wins: the state moves by ``UPDATE ... WHERE state = 'in_review'`` and
        only the reviewer whose update changed the row goes on (and releases the lock, once);
        every other gets ``409 already_decided`` naming the winner's decision. A claim that
        settlement picked up is no longer in review, so it cannot be decided."""
        services = self._services
        claim = models.Claim
        now = datetime.now(UTC)
        state = "approved" if approve else "rejected"
        with services.sessions() as db:
            result = db.execute(
                update(claim)
                .where(claim.id == claim_id, claim.state == "in_review")
                .values(
                    state=state,
                    reason_code=None if approve else (reason or "rejected_by_reviewer"),
                    updated_at=now,
                    **({} if approve else {"amount_fen": 0}),
                )
                .execution_options(synchronize_session=False)
            )
            if cast(CursorResult[Any], result).rowcount != 1:
                db.rollback()
                raise self._not_decidable(db, claim_id)
            db.add(
                models.ClaimEvent(
                    claim_id=claim_id,
                    at=now,
                    state=state,
                    actor=reviewer,
                    detail={"reason": reason},
                )
            )
            row = db.get(models.Claim, claim_id)
            assert row is not None
            if not approve:
                claim_totals.give_back(db, [row])
            db.commit()
            invoice_id, payer = row.invoice_id, row.payer
        if not approve:
            with services.lock:
                services.session.ledger.release_invoice(services.session.payers[payer], invoice_id)

    @staticmethod
    def _not_decidable(db: Session, claim_id: str) -> ClaimRefused:
        """Why a claim cannot be decided: unknown, decided already (by whom, when, how), or
        never in review."""
        found = db.get(models.Claim, claim_id)
        if found is None:
            return ClaimRefused(404, "claim_not_found", f"no claim {claim_id}")
        events = list(
            db.scalars(
                select(models.ClaimEvent)
                .where(models.ClaimEvent.claim_id == claim_id)
                .order_by(models.ClaimEvent.id)
            )
        )
        states = [e.state for e in events]
        if "in_review" in states:
            after = events[states.index("in_review") + 1 :]
            decision = next((e for e in after if e.state in ("approved", "rejected")), None)
            if decision is not None:
                return ClaimRefused(
                    409,
                    "already_decided",
                    f"claim {claim_id} was {decision.state} by {decision.actor}",
                    decision=decision.state,
                    decided_by=decision.actor,
                    decided_at=decision.at.isoformat(),
                    state=found.state,
                )
        return ClaimRefused(
            409, "not_in_review", f"claim {claim_id} is {found.state}", state=found.state
        )

    # -- settlement ---------------------------------------------------------------------------

    def settle_approved(self) -> int:
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
            return self._settle_approved()

    def _settle_approved(self) -> int:
        services = self._services
        self._reconcile()
        paid = 0
        payers = services.session.payers
        order = self._decider.payer_order
        for payer in sorted(payers, key=lambda p: order.index(p) if p in order else len(order)):
            account = payers[payer]
            rows = self._pick_up(payer)
            amounts = {r.id: r.amount_fen for r in rows}
            if rows and payer != FIRST_PAYER:
                amounts = self._repriced(rows)
            requests = [
                SettlementRequest(
                    r.id,
                    InvoiceLeaf(r.invoice_id, r.record_hash, r.hospital, r.total),
                    amounts[r.id],
                    r.signature,
                )
                for r in rows
                if r.id in amounts
            ]
            if not requests:
                continue
            with services.lock:
                outcomes = services.sequencer.settle(account, requests)
            per_tx: dict[bytes, list[Any]] = {}
            for o in outcomes:
                if o.receipt is not None:
                    per_tx.setdefault(o.receipt.tx_hash, []).append(o.receipt)
            for sent in per_tx.values():
                SETTLEMENT_BATCH.observe(len(sent))
                SETTLEMENT_GAS.inc(sent[0].gas_used)
            now = datetime.now(UTC)
            with services.sessions() as db:
                settled = {
                    o.request.reference: o.receipt.tx_hash
                    for o in outcomes
                    if o.receipt is not None
                }
                self._paid(db, settled, now)
                paid += len(settled)
                for outcome in outcomes:
                    if outcome.receipt is None:
                        self._refused(db, outcome.request.reference, outcome.error, now)
                db.commit()
        return paid

    def _pick_up(self, payer: str) -> list[Any]:
        """The payer's approved claims with their invoices' leaves, moved to ``settling`` by a
        conditional update: only the rows this call moved are returned."""
        claim, invoice = models.Claim, models.Invoice
        with self._services.sessions() as db:
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
                .where(claim.state == "approved", claim.payer == payer)
                .order_by(claim.created_at)
            ).all()
            taken: set[str] = set()
            for lo in range(0, len(rows), 500):
                taken.update(
                    db.scalars(
                        update(claim)
                        .where(
                            claim.id.in_([r.id for r in rows[lo : lo + 500]]),
                            claim.state == "approved",
                        )
                        .values(state="settling")
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
        services = self._services
        with services.lock:
            on_chain = {
                r.invoice_id: services.session.ledger.claim_state(r.invoice_id).paid for r in rows
            }
        amounts = {r.id: r.amount_fen for r in rows}
        now = datetime.now(UTC)
        with services.sessions() as db:
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
                citizen = citizens[claim.citizen_id]
                p = Pending(
                    0,
                    citizen.id,
                    citizen.id_number_hash,
                    citizen.sex,
                    citizen.birth_date,
                    citizen.assistance_eligible,
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
            except (IntegrityError, OperationalError, TotalsConflict):
                # Totals moved by a concurrent claim: these wait for the next settlement.
                db.rollback()
                _log.warning("repricing raced a concurrent claim; retried at the next settlement")
                stale_ids = [c.id for c, _ in stale]
                db.execute(
                    update(models.Claim)
                    .where(models.Claim.id.in_(stale_ids), models.Claim.state == "settling")
                    .values(state="approved")
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
                    "rejected",
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
                    state="repriced" if taken is not None else "rejected",
                    actor="sequencer",
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

    @staticmethod
    def _paid(db: Session, settled: Mapping[str, bytes], now: datetime) -> None:
        """Marks the claims ``settled`` (claim id -> transaction) paid, with their events and
        one payment each (never a second: a claim already paid keeps its payment)."""
        if not settled:
            return
        ids = sorted(settled)
        amounts: dict[str, int] = {}
        has_payment: set[str] = set()
        for lo in range(0, len(ids), 500):
            chunk = ids[lo : lo + 500]
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
                db.scalars(
                    select(models.Payment.claim_id).where(models.Payment.claim_id.in_(chunk))
                )
            )
        assert set(amounts) == set(ids), "settled claims that are not stored"
        db.execute(
            update(models.Claim),
            [
                {"id": claim_id, "state": "paid", "settle_tx": settled[claim_id], "updated_at": now}
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
                    "actor": "sequencer",
                    "detail": {"tx": "0x" + settled[claim_id].hex()},
                }
                for claim_id in ids
                for state in ("settled", "paid")
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

    @staticmethod
    def _refused(db: Session, claim_id: str, error: ContractRevert | None, now: datetime) -> None:
        """A payment the contract refused: back to ``approved`` when the refusal names a
        figure that moves (the cap, after an earlier payer paid: priced again at the next
        settlement; another payer's lock: paid once it is released), else ``rejected`` with
        the ledger's code, giving back what the claim took of the yearly totals."""
        claim = db.get(models.Claim, claim_id)
        assert claim is not None
        if isinstance(error, InvoiceLocked) or (
            isinstance(error, PaidAboveTotal) and claim.payer != FIRST_PAYER
        ):
            claim.state, claim.updated_at = "approved", now
            return
        claim_totals.give_back(db, [claim])
        code = "ledger_" + (error.abi_name.removeprefix("Ledger") if error else "refused")
        claim.state, claim.reason_code, claim.updated_at = "rejected", code, now
        db.add(
            models.ClaimEvent(
                claim_id=claim_id,
                at=now,
                state="rejected",
                actor="sequencer",
                detail={"reason": code, "error": str(error)},
            )
        )

    def _reconcile(self) -> None:
        """Claims left ``settling``: paid if the chain has their InvoiceSettled event, else
        approved again (never sent twice)."""
        services = self._services
        with services.sessions() as db:
            stuck = list(db.scalars(select(models.Claim).where(models.Claim.state == "settling")))
            if not stuck:
                return
            with services.lock:
                events = services.session.ledger.events(name="InvoiceSettled")
            settled = {(e.args["invoice_id"], e.args["payer"]): e.tx_hash for e in events}
            found: dict[str, bytes] = {}
            for claim in stuck:
                account = services.session.payers[claim.payer].address
                tx = settled.get((claim.invoice_id, account))
                if tx is not None:
                    found[claim.id] = tx
                else:
                    claim.state = "approved"
            db.flush()
            self._paid(db, found, datetime.now(UTC))
            db.commit()


__all__: Sequence[str] = (
    "FIRST_PAYER",
    "STATES",
    "ClaimRefused",
    "ClaimRequest",
    "ClaimService",
    "readable",
)
