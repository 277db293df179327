"""The claim flow's first step: intake. A citizen's one-tap claim (or an office's batch) is
verified by the verify flow, decided (``api.flows.decide``), takes the payer's lock on chain
when it goes to review, and is stored with its events and the yearly totals it moved.

What follows is elsewhere, in flow order: a reviewer's decision (``api.flows.review``), then
settlement on chain and the payment (``api.flows.settle``). States and their moves:
``api.db.models.ClaimState``.

No double payment, by construction in three places: one claim per (invoice, payer) in the
database (a unique constraint, so two simultaneous claims give one claim and one refusal);
the payer's lock on chain while a claim waits for review; and the contract's cumulative cap,
which refuses any payment that would bring the total paid above the invoice amount, whatever
the database says.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError, OperationalError

from api.adapters.metrics import CLAIMS_SUBMITTED
from api.adapters.workers import WorkerPool
from api.db import models
from api.db.models import ClaimState
from api.flows import ports
from api.flows import totals as claim_totals
from api.flows.decide import (
    Decided,
    Decider,
    Decisions,
    Pending,
    claims_of,
    decide_in_worker,
    pending,
    refuse_duplicate,
)
from api.flows.totals import TotalsConflict, is_race
from api.flows.verify import VerifyFlow
from api.flows.verify_failures import guessed_wrong
from api.read.invoices import (
    BillReference,
    InvoiceKeyAmbiguous,
    invoice_key,
    patients_invoice_ids,
    payload_of,
    rows_by_id,
)
from api.refusals import Conflict, Invalid, NotFound, Refused
from chain.errors import InvoiceLocked, LedgerError
from verifier.canonical import Domain
from verifier.pipeline import Verdict
from verifier.qr import encode_payload

_log = logging.getLogger(__name__)

#: Batches of at least this many verified claims are decided on two cores.
PARALLEL_THRESHOLD = 256

#: Refusals that are failed attempts: what was sent names no invoice of the citizen's.
FAILED_ATTEMPTS = ("invoice_not_found", "verification_failed")

Outcome = models.Claim | Refused
"""A claim of a batch: stored, or refused."""


@dataclass(frozen=True)
class ClaimRequest:
    """One claim to submit: whose, what names the invoice (an invoice id or reference for the
    app's one tap, a QR text, or a photo's bytes), from which payer, through which channel."""

    citizen: models.Citizen
    source: str | bytes
    payer: str
    channel: str


def _not_found() -> NotFound:
    return NotFound("invoice_not_found", "no such invoice of yours")


def _pending(i: int, request: ClaimRequest, verdict: Verdict, row: models.Invoice) -> Pending:
    return pending(
        i,
        request.citizen,
        request.payer,
        request.channel,
        row.invoice_id,
        tuple(s.code for s in verdict.steps),
        int(verdict.steps[-1].details["paid"]),  # what the status step read on chain
    )


class Verifier(Protocol):
    """What intake asks of the verify flow (``api.flows.verify.VerifyFlow``)."""

    def verify_many(
        self, sources: Sequence[bytes | str], rows: Mapping[bytes, models.Invoice]
    ) -> list[Verdict]: ...


class AttemptGate(Protocol):
    """What intake asks of the failed-attempt limits (``api.flows.verify_failures``); both
    raise its ``VerificationRefused`` (a ``TooMany``)."""

    def admit(self, asker: str) -> None: ...
    def record(self, asker: str | None, bill: str | None) -> None: ...


class _LockTaken(Exception):
    """Raised when a claim of a batch going to review cannot take the payer's lock on chain
    (another payer took it since verification): the batch is taken again one by one."""


def _lock_refusal(invoice_id: bytes, locked_by: str) -> Conflict:
    return Conflict(
        "invoice_locked",
        "another payer holds this invoice for review; claim again once it has decided",
        invoice_id="0x" + invoice_id.hex(),
        locked_by=locked_by,
    )


class ClaimFlow:
    """Takes claims in: verifies, decides, locks and stores them."""

    def __init__(
        self,
        uow: ports.UnitOfWork,
        ledger: ports.Ledger,
        verification: Verifier,
        failures: AttemptGate,
        domain: Domain,
        decider: Decider,
        pool: WorkerPool,
        parallel: bool,
        clock: ports.Clock = ports.utc_now,
    ) -> None:
        """``pool`` decides part of a large batch in a worker process (one worker: this
        process verifies and decides too, see :meth:`_parts`); ``parallel`` is whether there
        are two cores to do so."""
        self._uow = uow
        self._ledger = ledger
        self._verification = verification
        self._failures = failures
        self._domain = domain
        self._decider = decider
        self.policies = decider.policies
        self._pool = pool
        self._parallel = parallel
        self.clock = clock

    def close(self) -> None:
        self._pool.close()

    def submit(
        self, citizen: models.Citizen, source: str | bytes, payer: str, channel: str
    ) -> models.Claim:
        """A claim of the invoice named by ``source`` (an invoice id or reference for the
        app's one tap, a QR text, or a photo's bytes) from ``payer``; raises a ``Refused``.

        Two claims of one citizen with one payer at the same moment race for the yearly
        accumulator; the loser is adjudicated again on the winner's totals."""
        request = ClaimRequest(citizen, source, payer, channel)
        for attempt in range(3):
            try:
                (outcome,) = self._submit_batch([request])
            except (IntegrityError, OperationalError, TotalsConflict) as exc:
                if attempt == 2 or not is_race(exc):
                    raise
                continue
            if isinstance(outcome, Refused):
                raise outcome
            return outcome
        raise AssertionError("unreachable")

    def attempt(
        self, citizen: models.Citizen, source: str | bytes, payer: str, channel: str
    ) -> models.Claim:
        """:meth:`submit` through a public channel: a citizen's own failed attempts (what was
        sent names no invoice of theirs) are limited, decided before the attempt (a
        ``TooMany``, ``rate_limited``); staff's at the office are not."""
        asker = None if channel == "office" else f"citizen:{citizen.id}"
        if asker is not None:
            self._failures.admit(asker)  # VerificationRefused: a TooMany
        try:
            return self.submit(citizen, source, payer, channel)
        except Refused as exc:
            if asker is not None and exc.code in FAILED_ATTEMPTS:
                self._failures.record(asker, None)
            raise

    def submit_many(self, requests: Sequence[ClaimRequest]) -> list[Outcome]:
        """Claims that arrive together (an office's batch, a payer's import), each checked
        exactly as by :meth:`submit`, in order: a later claim sees the earlier ones (a second
        claim of an invoice from one payer is a duplicate, another payer waits for basic
        insurance, one citizen's yearly totals add up). Invoices, lines, history and totals
        are loaded once for the batch, and the batch is stored in one transaction; when a
        concurrent claim wins a race, the batch is taken again one claim at a time."""
        try:
            return self._submit_batch(requests)
        except (IntegrityError, OperationalError, TotalsConflict, _LockTaken) as exc:
            if len(requests) == 1 or not (isinstance(exc, _LockTaken) or is_race(exc)):
                raise
        outcomes: list[Outcome] = []
        for r in requests:
            try:
                outcomes.append(self.submit(r.citizen, r.source, r.payer, r.channel))
            except Refused as exc:
                outcomes.append(exc)
        return outcomes

    def _submit_batch(self, requests: Sequence[ClaimRequest]) -> list[Outcome]:
        now = self.clock()
        outcomes: list[Outcome | None] = [None] * len(requests)
        verified, added, decisions = self._decided(requests, outcomes, now)
        decided = sorted(decisions.outcomes, key=lambda o: o[0])
        totals = decisions.totals
        # Lock, then store: a claim going to review holds its payer's lock on chain before it
        # is stored, and the locks of claims that end up not stored are released.
        locks, refused = self._take_locks(len(requests), decided, outcomes)
        if refused:
            decided, totals = [], {}  # a lone claim refused for the lock: nothing of it stored
        stored = False
        try:
            with self._uow() as db:
                events: list[dict[str, Any]] = []  # inserted as rows: no ORM bookkeeping
                for i, outcome in decided:
                    if isinstance(outcome, Refused):
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
                    VerifyFlow.add_counts(db, added, now)
                    db.commit()
                    stored = True
                except IntegrityError:
                    # A concurrent claim of the same invoice and payer won: the unique
                    # (invoice, payer) constraint decides the race.
                    db.rollback()
                    if len(requests) == 1 and verified:
                        ((_, row),) = verified.values()
                        with self._uow() as fresh:
                            claims_now = claims_of(fresh, [row.invoice_id])
                        refuse_duplicate(claims_now, row.invoice_id, requests[0].payer)
                    raise
        finally:
            if not stored:
                self._release_unstored(locks)
        for o in outcomes:
            assert o is not None
            CLAIMS_SUBMITTED.labels(o.code if isinstance(o, Refused) else o.state).inc()
        return outcomes  # type: ignore[return-value]

    def _decided(
        self, requests: Sequence[ClaimRequest], outcomes: list[Outcome | None], now: datetime
    ) -> tuple[dict[int, tuple[Verdict, models.Invoice]], dict[bytes, int], Decisions]:
        """Verifies and decides the batch: the verified claims (position -> verdict and
        invoice), the verifications to count per invoice, and the decisions; refusals go to
        ``outcomes``.

        Parts by citizen (every claim of an invoice is its patient's, so each part decides
        exactly as the whole batch would): each worker part is verified here and handed to
        the worker process, which decides it while this process verifies the next; this
        process decides the last part itself."""
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
        return verified_all, added_all, decisions

    def _refuse_locked(
        self,
        requests: Sequence[ClaimRequest],
        verified: dict[int, tuple[Verdict, models.Invoice]],
        outcomes: list[Outcome | None],
    ) -> None:
        """Refuses, before anything is decided or stored, the claims of invoices that another
        payer holds locked on chain for review (as the status step read it)."""
        for i, (verdict, row) in list(verified.items()):
            locked_by = verdict.steps[-1].details.get("locked_by")
            if locked_by and locked_by != self._ledger.payer_address(requests[i].payer):
                outcomes[i] = _lock_refusal(row.invoice_id, str(locked_by))
                del verified[i]

    def _take_locks(
        self,
        batch_size: int,
        decided: Sequence[tuple[int, Decided | Refused]],
        outcomes: list[Outcome | None],
    ) -> tuple[list[tuple[str, bytes]], bool]:
        """Takes the payer's lock on chain for every decided claim going to review; returns the
        locks taken, and whether a lone claim was refused for the lock (its refusal is then in
        ``outcomes``): another payer took the lock since verification. In a batch (whose later
        claims counted on the refused one) the locks are released and ``_LockTaken`` raised."""
        taken: list[tuple[str, bytes]] = []
        refused = False
        try:
            for i, outcome in decided:
                if isinstance(outcome, Refused) or outcome.claim["state"] != ClaimState.IN_REVIEW:
                    continue
                payer, invoice_id = outcome.claim["payer"], outcome.claim["invoice_id"]
                try:
                    self._ledger.lock_invoice(payer, invoice_id)
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
        if not locks:
            return
        with self._uow() as db:
            held = {
                (payer, invoice_id)
                for payer, invoice_id in db.execute(
                    select(models.Claim.payer, models.Claim.invoice_id).where(
                        models.Claim.invoice_id.in_([i for _, i in locks]),
                        models.Claim.state == ClaimState.IN_REVIEW,
                    )
                )
            }
        for payer, invoice_id in locks:
            if (payer, invoice_id) in held:
                continue
            try:
                self._ledger.release_invoice(payer, invoice_id)
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
        outcomes: list[Outcome | None],
    ) -> tuple[dict[int, tuple[Verdict, models.Invoice]], list[bytes]]:
        """Of the requests at ``indexes``: the verdict and stored invoice of each that
        verifies and names an invoice of its citizen, by position, and the invoice id of every
        successful verification made by a citizen (each counts, as in
        :meth:`VerifyFlow.verify`; staff's at the office do not); every other request
        gets its refusal in ``outcomes``. A source that finds no bill (a wrong check code
        included) and one that names someone else's invoice, verified or not, are refused
        exactly as an unknown invoice: the refusal tells nothing of a bill one cannot show."""
        payers = sorted(set(self.policies) & set(self._ledger.payers))
        keys: dict[int, bytes | BillReference | InvoiceKeyAmbiguous | None] = {}
        for i in indexes:
            source = requests[i].source
            keys[i] = invoice_key(source) if isinstance(source, str) else None
        with self._uow() as db:
            # a bare BILLCODE-BILLNUMBER names the citizen's own invoice of that number
            patients = {i: requests[i].citizen.id_number_hash for i in keys}
            keys.update(patients_invoice_ids(db, keys, patients))
            rows = rows_by_id(db, [k for k in keys.values() if isinstance(k, bytes)])
        sources: list[tuple[int, str | bytes]] = []
        for i, key in keys.items():
            request = requests[i]
            if request.payer not in payers:
                outcomes[i] = Invalid("unknown_payer", f"no payer {request.payer!r}", payers=payers)
            elif key is None:
                sources.append((i, request.source))
            elif isinstance(key, InvoiceKeyAmbiguous):
                outcomes[i] = Conflict("invoice_key_ambiguous", str(key))
            elif key not in rows:
                outcomes[i] = _not_found()
            else:  # one tap: the invoice's own fingerprint goes through every step
                sources.append((i, encode_payload(payload_of(self._domain, rows[key]))))
        verdicts = self._verification.verify_many([s for _, s in sources], rows)
        named = {v.invoice_id for v in verdicts if v.invoice_id is not None} - set(rows)
        if named:
            with self._uow() as db:
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
                outcomes[i] = Invalid(
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
