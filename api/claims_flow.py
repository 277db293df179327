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

import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, load_only

import claims
from api.catalogue_data import CATALOGUE as DEMO_CATALOGUE
from api.db import models
from api.invoice_store import header_only, invoice_key, load_invoices, payload_of, rows_by_id
from api.services import Services
from api.verification import VerificationService
from chain.errors import ContractRevert
from chain.model import InvoiceLeaf
from chain.sequencer import SettlementRequest
from verifier.invoice import Invoice
from verifier.pipeline import Verdict
from verifier.qr import encode_payload

FIRST_PAYER = "basic"
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


class ClaimRefused(Exception):
    """Raised when a claim cannot be made; ``code`` is stable, ``details`` name what matters
    (for a duplicate, the first claim's reference)."""

    def __init__(self, status: int, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.details = details


def _catalogue() -> claims.Catalogue:
    return claims.Catalogue(
        claims.CatalogueEntry(
            item.code,
            item.name,
            claims.ItemClass(item.item_class.value),
            item.unit_price,
            item.max_daily_milli,
            item.max_outpatient_milli,
            claims.Sex(item.sex) if item.sex else None,
            item.min_age,
            item.max_age,
        )
        for item in DEMO_CATALOGUE.values()
    )


_ITEM_CLASS = {c.value: c for c in claims.ItemClass}  # by value: the verifier's class too


def claim_invoice(
    invoice: Invoice, level: int, reference: str, claimed_at: datetime | None = None
) -> claims.ClaimInvoice:
    """The claims package's view of an invoice."""
    return claims.ClaimInvoice(
        reference=reference,
        hospital=invoice.hospital,
        hospital_level=claims.HospitalLevel(level),
        visit_type=claims.VisitType(invoice.visit_type.value),
        issued_at=invoice.issued_at,
        total_fen=invoice.total,
        lines=tuple(
            claims.ClaimLine(
                ln.code,
                ln.name,
                _ITEM_CLASS[ln.item_class],
                ln.unit_price,
                ln.quantity_milli,
                ln.amount,
                ln.department,
                ln.time,
            )
            for ln in invoice.lines
        ),
        diagnoses=invoice.diagnoses,
        admitted_on=invoice.admitted_on,
        discharged_on=invoice.discharged_on,
        claimed_at=claimed_at,
    )


def _accumulator_to_json(acc: claims.Accumulator) -> dict[str, Any]:
    return {name: asdict(usage) for name, usage in acc.pools}


def _accumulator_from_json(payer: str, year: int, data: dict[str, Any]) -> claims.Accumulator:
    return claims.Accumulator(
        payer,
        year,
        tuple((name, claims.PoolUsage(**usage)) for name, usage in sorted(data.items())),
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


_CLAIM_KEYS = (models.Claim.id, models.Claim.invoice_id, models.Claim.payer, models.Claim.state)


def _claims_of(db: Session, invoice_ids: Iterable[bytes]) -> dict[tuple[bytes, str], models.Claim]:
    """The claims of these invoices, by (invoice id, payer)."""
    wanted = sorted(set(invoice_ids))
    found: dict[tuple[bytes, str], models.Claim] = {}
    for lo in range(0, len(wanted), 500):
        for claim in db.scalars(
            select(models.Claim)
            .options(load_only(*_CLAIM_KEYS))  # not the explanation: only whose and which state
            .where(models.Claim.invoice_id.in_(wanted[lo : lo + 500]))
        ):
            found[claim.invoice_id, claim.payer] = claim
    return found


@dataclass
class _Known:
    """What a batch of claims reads from the database, loaded once for the batch, and what it
    changes: yearly totals and verification counts (stored by :meth:`store`)."""

    levels: dict[str, int]  # hospital code -> level
    invoices: dict[bytes, Invoice]  # the claimed invoices and the overlapping history, lines
    existing: dict[tuple[bytes, str], models.Claim]  # by (invoice, payer); this batch's too
    counts: dict[bytes, int]  # verifications, this batch's included
    added: dict[bytes, int]  # this batch's verifications
    patients: dict[bytes, list[models.Invoice]]  # each patient's valid invoices
    accumulators: dict[tuple[int, str, int], claims.Accumulator]
    stored: dict[tuple[int, str, int], models.PayerAccumulator]
    _views: dict[tuple[bytes, bool], claims.ClaimInvoice]

    @classmethod
    def load(
        cls,
        db: Session,
        claimed: Sequence[models.Invoice],
        citizen_ids: Iterable[int],
        verified: Iterable[bytes],
    ) -> _Known:
        """Loads what the claims of ``claimed`` by ``citizen_ids`` need; ``verified`` are the
        invoice ids this batch verified (once per verification)."""
        added: dict[bytes, int] = {}
        for invoice_id in verified:
            added[invoice_id] = added.get(invoice_id, 0) + 1
        counts = VerificationService.counts_of(db, added)
        for invoice_id, n in added.items():
            counts[invoice_id] += n
        patients: dict[bytes, list[models.Invoice]] = {}
        hashes = sorted({row.patient_id_hash for row in claimed if row.patient_id_hash})
        for lo in range(0, len(hashes), 500):
            for row in db.scalars(
                select(models.Invoice).where(
                    models.Invoice.patient_id_hash.in_(hashes[lo : lo + 500]),
                    models.Invoice.voided_by.is_(None),
                )
            ):
                patients.setdefault(row.patient_id_hash, []).append(row)  # type: ignore[arg-type]
        # Lines of the claimed invoices, and of the history whose days overlap theirs (what
        # the repeated-charge rules compare); the other rules need headers alone.
        with_lines = {row.invoice_id: row for row in claimed}
        for row in claimed:
            first, last = _days(row.issued_at, row.admitted_on, row.discharged_on)
            for other in patients.get(row.patient_id_hash, ()):  # type: ignore[arg-type]
                start, end = _days(other.issued_at, other.admitted_on, other.discharged_on)
                if start <= last and first <= end:
                    with_lines[other.invoice_id] = other
        citizen_ids = sorted(set(citizen_ids))
        stored: dict[tuple[int, str, int], models.PayerAccumulator] = {}
        for lo in range(0, len(citizen_ids), 500):
            for acc in db.scalars(
                select(models.PayerAccumulator).where(
                    models.PayerAccumulator.citizen_id.in_(citizen_ids[lo : lo + 500])
                )
            ):
                stored[acc.citizen_id, acc.payer, acc.year] = acc
        return cls(
            levels={
                code: level
                for code, level in db.execute(select(models.Hospital.code, models.Hospital.level))
            },
            invoices=load_invoices(db, with_lines.values()),
            existing=_claims_of(db, [row.invoice_id for row in claimed]),
            counts=counts,
            added=added,
            patients=patients,
            accumulators={
                key: _accumulator_from_json(key[1], key[2], acc.pools)
                for key, acc in stored.items()
            },
            stored=stored,
            _views={},
        )

    def accumulator(self, citizen_id: int, payer: str, year: int) -> claims.Accumulator:
        """The citizen's yearly totals with the payer, this batch's claims included."""
        found = self.accumulators.get((citizen_id, payer, year))
        return found if found is not None else claims.Accumulator.empty(payer, year)

    def history(
        self, citizen: models.Citizen, claimed: models.Invoice
    ) -> list[claims.ClaimInvoice]:
        """The citizen's other valid invoices, for the audit rules."""
        return [
            self._view(row)
            for row in self.patients.get(citizen.id_number_hash, ())
            if row.invoice_id != claimed.invoice_id
        ]

    def _view(self, row: models.Invoice) -> claims.ClaimInvoice:
        full = row.invoice_id in self.invoices
        view = self._views.get((row.invoice_id, full))
        if view is None:
            invoice = self.invoices[row.invoice_id] if full else header_only(row)
            view = claim_invoice(
                invoice, self.levels.get(row.hospital, 0), f"{row.bill_code}-{row.bill_number}"
            )
            self._views[row.invoice_id, full] = view
        return view

    def store(self, db: Session, now: datetime) -> None:
        """Writes the moved yearly totals and the verification counts into ``db``."""
        for key, accumulator in self.accumulators.items():
            pools = _accumulator_to_json(accumulator)
            row = self.stored.get(key)
            if row is None:
                citizen_id, payer, year = key
                db.add(
                    models.PayerAccumulator(
                        citizen_id=citizen_id, payer=payer, year=year, pools=pools
                    )
                )
            elif row.pools != pools:
                row.pools = pools
        VerificationService.add_counts(db, self.added, now)


class ClaimService:
    """Submits, reviews and settles claims."""

    def __init__(
        self, services: Services, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._services = services
        self.clock = clock
        self.policies = claims.bundled_policies()
        self.rules = claims.load_rules()
        self.catalogue = _catalogue()

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
            except (IntegrityError, OperationalError):
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
        except (IntegrityError, OperationalError):
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
        verified, counted = self._verified(requests, outcomes)
        locks: list[tuple[str, bytes]] = []
        events: list[dict[str, Any]] = []  # inserted as rows: no ORM bookkeeping needed
        with services.sessions() as db:
            known = _Known.load(
                db,
                [row for _, row in verified.values()],
                [requests[i].citizen.id for i in verified],
                counted,
            )
            for i, (verdict, row) in verified.items():
                request = requests[i]
                try:
                    self._refuse_duplicate(known.existing, row.invoice_id, request.payer)
                    self._refuse_before_basic(known.existing, row.invoice_id, request.payer)
                except ClaimRefused as exc:
                    outcomes[i] = exc
                    continue
                claim, history = self._adjudicated(request, verdict, row, known, now)
                db.add(claim)
                events.extend(history)
                known.existing[row.invoice_id, request.payer] = claim
                if claim.state == "in_review":
                    locks.append((request.payer, row.invoice_id))
                outcomes[i] = claim
            try:
                db.flush()  # claims first: their events refer to them
                if events:
                    db.execute(insert(models.ClaimEvent), events)
                known.store(db, now)
                db.commit()
            except IntegrityError:
                # A concurrent claim of the same invoice and payer won: the unique
                # (invoice, payer) constraint decides the race.
                db.rollback()
                if len(requests) == 1 and verified:
                    ((_, row),) = verified.values()
                    with services.sessions() as fresh:
                        claims_now = _claims_of(fresh, [row.invoice_id])
                    self._refuse_duplicate(claims_now, row.invoice_id, requests[0].payer)
                raise
        for payer, invoice_id in locks:
            with services.lock:
                services.session.ledger.lock_invoice(services.session.payers[payer], invoice_id)
        assert all(o is not None for o in outcomes)
        return outcomes  # type: ignore[return-value]

    def _verified(
        self,
        requests: Sequence[ClaimRequest],
        outcomes: list[models.Claim | ClaimRefused | None],
    ) -> tuple[dict[int, tuple[Verdict, models.Invoice]], list[bytes]]:
        """The verdict and stored invoice of each request that verifies and names an invoice
        of its citizen, by position, and the invoice id of every verification made (each
        counts, as in :meth:`VerificationService.verify`); every other request gets its
        refusal in ``outcomes``."""
        services = self._services
        payers = sorted(set(self.policies) & set(services.session.payers))
        keys = [invoice_key(r.source) if isinstance(r.source, str) else None for r in requests]
        with services.sessions() as db:
            rows = rows_by_id(db, [k for k in keys if k is not None])
        sources: list[tuple[int, str | bytes]] = []
        for i, (request, key) in enumerate(zip(requests, keys, strict=True)):
            if request.payer not in payers:
                outcomes[i] = ClaimRefused(
                    422, "unknown_payer", f"no payer {request.payer!r}", payers=payers
                )
            elif key is None:
                sources.append((i, request.source))
            elif key not in rows:
                outcomes[i] = _not_found()
            else:  # one tap: the invoice's own fingerprint goes through every step
                sources.append((i, encode_payload(payload_of(services.domain, rows[key]))))
        verdicts = services.verification.verify_many([s for _, s in sources], rows)
        named = {v.invoice_id for v in verdicts if v.valid and v.invoice_id not in rows}
        if named:
            with services.sessions() as db:
                rows.update(rows_by_id(db, named))  # type: ignore[arg-type]
        verified: dict[int, tuple[Verdict, models.Invoice]] = {}
        for (i, _), verdict in zip(sources, verdicts, strict=True):
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
            row = rows.get(verdict.invoice_id)  # type: ignore[arg-type]
            if row is None or row.patient_id_hash != requests[i].citizen.id_number_hash:
                outcomes[i] = _not_found()  # someone else's invoice: as if unknown
                continue
            verified[i] = (verdict, row)
        return verified, [v.invoice_id for v in verdicts if v.invoice_id is not None]

    def _adjudicated(
        self,
        request: ClaimRequest,
        verdict: Verdict,
        row: models.Invoice,
        known: _Known,
        now: datetime,
    ) -> tuple[models.Claim, list[dict[str, Any]]]:
        """The claim and its events, adjudicated by the payer's policy and screened by the
        audit rules; the citizen's yearly totals in ``known`` move on unless it is rejected."""
        citizen, payer = request.citizen, request.payer
        invoice = known.invoices[row.invoice_id]
        reference = f"{row.bill_code}-{row.bill_number}"
        presented = claim_invoice(invoice, known.levels.get(row.hospital, 0), reference, now)
        person = claims.Citizen(
            claims.Sex(citizen.sex),
            citizen.birth_date,
            frozenset({"low_income"} if citizen.assistance_eligible else ()),
        )
        year = presented.policy_year
        accumulator = known.accumulator(citizen.id, payer, year)
        # What every payer has paid so far, as the verdict's status step read it on chain.
        paid_on_chain = int(verdict.steps[-1].details["paid"])
        adjudication = claims.adjudicate(
            self.policies[payer], presented, person, accumulator, already_paid_fen=paid_on_chain
        )
        hits = claims.audit(
            presented,
            person,
            self.catalogue,
            known.history(citizen, row),
            known.counts[row.invoice_id],
            self.rules,
        )
        if adjudication.status != "approved" or adjudication.amount_fen == 0:
            state, reason = "rejected", adjudication.reason.code
        elif claims.needs_review(hits):
            state, reason = "in_review", "audit_hits"
        else:
            state, reason = "approved", None
        if state != "rejected":
            known.accumulators[citizen.id, payer, year] = adjudication.accumulator
        claim = models.Claim(
            id="CLM" + secrets.token_hex(6).upper(),
            invoice_id=row.invoice_id,
            payer=payer,
            citizen_id=citizen.id,
            channel=request.channel,
            state=state,
            reason_code=reason,
            amount_fen=adjudication.amount_fen if state != "rejected" else 0,
            adjudication=_explain(adjudication),
            audit_hits=[asdict(h) for h in hits],
            created_at=now,
            updated_at=now,
        )
        events = [
            ("submitted", {"channel": request.channel}),
            ("verified", {"steps": [s.code for s in verdict.steps]}),
            (
                "adjudicated",
                {"amount_fen": adjudication.amount_fen, "reason": adjudication.reason.code},
            ),
            (state, {"reason": reason, "hits": [h.code for h in hits]}),
        ]
        return claim, [
            {
                "claim_id": claim.id,
                "at": now,
                "state": name,
                "actor": f"citizen:{citizen.id}",
                "detail": detail,
            }
            for name, detail in events
        ]

    @staticmethod
    def _refuse_before_basic(
        existing: Mapping[tuple[bytes, str], models.Claim], invoice_id: bytes, payer: str
    ) -> None:
        """Payers chain: basic insurance first, the others pay from what it left, so they
        wait until the basic claim is final (paid or rejected)."""
        if payer == FIRST_PAYER:
            return
        basic = existing.get((invoice_id, FIRST_PAYER))
        if basic is None or basic.state not in ("paid", "rejected"):
            raise ClaimRefused(
                409,
                "basic_first",
                "claim from basic medical insurance first; the other payers pay from what it "
                "leaves once it has paid or refused",
                basic_claim=basic.id if basic else None,
                basic_state=basic.state if basic else None,
            )

    @staticmethod
    def _refuse_duplicate(
        existing: Mapping[tuple[bytes, str], models.Claim], invoice_id: bytes, payer: str
    ) -> None:
        first = existing.get((invoice_id, payer))
        if first is not None:
            raise ClaimRefused(
                409,
                "duplicate_claim",
                f"this invoice was claimed from {payer} already as {first.id}",
                first_claim=first.id,
                first_state=first.state,
            )

    # -- review -------------------------------------------------------------------------------

    def review(self, claim_id: str, approve: bool, reviewer: str, reason: str | None) -> None:
        """A reviewer's decision on a claim in review; rejecting releases the payer's lock."""
        services = self._services
        with services.sessions() as db:
            claim = db.get(models.Claim, claim_id)
            if claim is None:
                raise ClaimRefused(404, "claim_not_found", f"no claim {claim_id}")
            if claim.state != "in_review":
                raise ClaimRefused(409, "not_in_review", f"claim {claim_id} is {claim.state}")
            now = datetime.now(UTC)
            claim.state = "approved" if approve else "rejected"
            claim.reason_code = None if approve else (reason or "rejected_by_reviewer")
            if not approve:
                claim.amount_fen = 0
            claim.updated_at = now
            db.add(
                models.ClaimEvent(
                    claim_id=claim_id,
                    at=now,
                    state=claim.state,
                    actor=f"reviewer:{reviewer}",
                    detail={"reason": reason},
                )
            )
            db.commit()
            invoice_id, payer = claim.invoice_id, claim.payer
        if not approve:
            with services.lock:
                services.session.ledger.release_invoice(services.session.payers[payer], invoice_id)

    # -- settlement ---------------------------------------------------------------------------

    def settle_approved(self) -> int:
        """Settles every approved claim on chain, payer by payer, in batches; returns how many
        were paid. Claims left ``settling`` by a crash are reconciled with the chain first."""
        services = self._services
        self._reconcile()
        paid = 0
        for payer, account in services.session.payers.items():
            with services.sessions() as db:
                claim, invoice = models.Claim, models.Invoice
                rows = db.execute(
                    select(
                        claim.id,
                        claim.amount_fen,
                        invoice.invoice_id,
                        invoice.record_hash,
                        invoice.hospital,
                        invoice.total,
                    )
                    .join(invoice, invoice.invoice_id == claim.invoice_id)
                    .where(claim.state == "approved", claim.payer == payer)
                    .order_by(claim.created_at)
                ).all()
                if not rows:
                    continue
                for lo in range(0, len(rows), 500):
                    db.execute(
                        update(claim)
                        .where(claim.id.in_([r.id for r in rows[lo : lo + 500]]))
                        .values(state="settling")
                    )
                db.commit()
            requests = [
                SettlementRequest(
                    r.id,
                    InvoiceLeaf(r.invoice_id, r.record_hash, r.hospital, r.total),
                    r.amount_fen,
                )
                for r in rows
            ]
            with services.lock:
                outcomes = services.sequencer.settle(account, requests)
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
        claim = db.get(models.Claim, claim_id)
        assert claim is not None
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


def _days(issued_at: datetime, admitted: date | None, discharged: date | None) -> tuple[date, date]:
    """The calendar days (China Standard Time) an invoice's services span."""
    issued = issued_at.astimezone(claims.CHINA_TZ).date()
    return (admitted or issued, max(discharged or issued, issued))


def _explain(adjudication: Any) -> dict[str, Any]:
    """What a citizen reads: the outcome and each step of the arithmetic, in zh and en."""
    return {
        "amount_fen": adjudication.amount_fen,
        "status": adjudication.status,
        "reason": {
            "code": adjudication.reason.code,
            "zh": adjudication.reason.zh,
            "en": adjudication.reason.en,
        },
        "steps": [{"code": n.code, "zh": n.zh, "en": n.en} for n in adjudication.steps],
        "categories": [
            {
                "item_class": c.item_class.value,
                "amount_fen": c.amount_fen,
                "in_policy_fen": c.in_policy_fen,
                "self_share_fen": c.self_share_fen,
                "out_of_policy_fen": c.out_of_policy_fen,
                "excluded_fen": c.excluded_fen,
            }
            for c in adjudication.categories
        ],
        # How each line counted, as figures; :func:`readable` adds its sentences when read
        # (an inpatient stay has hundreds of lines, and most claims are never opened).
        "lines": [
            {
                "line": ln.index + 1,
                "code": ln.code,
                "name": ln.name,
                "class": ln.item_class.value,
                "amount_fen": ln.amount_fen,
                "in_policy_fen": ln.in_policy_fen,
                "self_share_fen": ln.self_share_fen,
                "self_share_bp": ln.self_share_bp,
                "out_of_policy_fen": ln.out_of_policy_fen,
                "excluded_fen": ln.excluded_fen,
            }
            for ln in adjudication.lines
        ],
    }


def readable(explanation: dict[str, Any]) -> dict[str, Any]:
    """A stored explanation with each line's sentence in zh and en ("line by line")."""
    lines = []
    for ln in explanation.get("lines", []):
        if "zh" not in ln:
            note = claims.LineResult(
                ln["line"] - 1,
                ln["code"],
                ln["name"],
                claims.ItemClass(ln["class"]),
                ln["amount_fen"],
                ln["in_policy_fen"],
                ln["self_share_fen"],
                ln["out_of_policy_fen"],
                ln["excluded_fen"],
                ln["self_share_bp"],
            ).note
            ln = {**ln, "zh": note.zh, "en": note.en}
        lines.append(ln)
    return {**explanation, "lines": lines}


__all__: Sequence[str] = ("STATES", "ClaimRefused", "ClaimRequest", "ClaimService", "readable")
