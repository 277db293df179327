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
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

import claims
from api.catalogue_data import CATALOGUE as DEMO_CATALOGUE
from api.db import models
from api.invoice_store import invoice_key, load_invoice
from api.services import Services
from chain.errors import ContractRevert
from chain.model import InvoiceLeaf
from chain.sequencer import SettlementRequest
from verifier.invoice import Invoice

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
                claims.ItemClass(ln.item_class.value),
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
        app's one tap, a QR text, or a photo's bytes) from ``payer``.

        Two claims of one citizen with one payer at the same moment race for the yearly
        accumulator; the loser is adjudicated again on the winner's totals."""
        for attempt in range(3):
            try:
                return self._submit_once(citizen, source, payer, channel)
            except (IntegrityError, OperationalError):
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _submit_once(
        self, citizen: models.Citizen, source: str | bytes, payer: str, channel: str
    ) -> models.Claim:
        services = self._services
        if payer not in self.policies or payer not in services.session.payers:
            raise ClaimRefused(
                422,
                "unknown_payer",
                f"no payer {payer!r}",
                payers=sorted(set(self.policies) & set(services.session.payers)),
            )
        verdict, row = self._verified(source)
        if row is None or row.patient_id_hash != citizen.id_number_hash:
            # Someone else's invoice gets the same answer as an unknown one.
            raise ClaimRefused(404, "invoice_not_found", "no such invoice of yours")
        self._refuse_duplicate(row.invoice_id, payer)
        self._refuse_before_basic(row.invoice_id, payer)
        now = self.clock()
        with services.sessions() as db:
            invoice = load_invoice(db, row)
            level = (
                db.scalar(select(models.Hospital.level).where(models.Hospital.code == row.hospital))
                or 0
            )
            history = self._history(db, citizen, invoice, row.invoice_id)
            acc_row = db.get(models.PayerAccumulator, (citizen.id, payer, invoice.issued_at.year))
        reference = f"{row.bill_code}-{row.bill_number}"
        presented = claim_invoice(invoice, level, reference, claimed_at=now)
        person = claims.Citizen(
            claims.Sex(citizen.sex),
            citizen.birth_date,
            frozenset({"low_income"} if citizen.assistance_eligible else ()),
        )
        year = presented.policy_year
        accumulator = (
            _accumulator_from_json(payer, year, acc_row.pools)
            if acc_row
            else claims.Accumulator.empty(payer, year)
        )
        # What every payer has paid so far, as the verdict's status step read it on chain.
        paid_on_chain = int(verdict.steps[-1].details["paid"])
        adjudication = claims.adjudicate(
            self.policies[payer], presented, person, accumulator, already_paid_fen=paid_on_chain
        )
        hits = claims.audit(
            presented,
            person,
            self.catalogue,
            history,
            services.verification.count_of(row.invoice_id),
            self.rules,
        )
        if adjudication.status != "approved" or adjudication.amount_fen == 0:
            state, reason = "rejected", adjudication.reason.code
        elif claims.needs_review(hits):
            state, reason = "in_review", "audit_hits"
        else:
            state, reason = "approved", None
        claim = models.Claim(
            id="CLM" + secrets.token_hex(6).upper(),
            invoice_id=row.invoice_id,
            payer=payer,
            citizen_id=citizen.id,
            channel=channel,
            state=state,
            reason_code=reason,
            amount_fen=adjudication.amount_fen if state != "rejected" else 0,
            adjudication=_explain(adjudication),
            audit_hits=[asdict(h) for h in hits],
            created_at=now,
            updated_at=now,
        )
        events = [
            ("submitted", {"channel": channel}),
            ("verified", {"steps": [s.code for s in verdict.steps]}),
            (
                "adjudicated",
                {"amount_fen": adjudication.amount_fen, "reason": adjudication.reason.code},
            ),
            (state, {"reason": reason, "hits": [h.code for h in hits]}),
        ]
        with services.sessions() as db:
            try:
                db.add(claim)
                db.flush()  # the unique (invoice, payer) constraint decides a race here
                for name, detail in events:
                    db.add(
                        models.ClaimEvent(
                            claim_id=claim.id,
                            at=now,
                            state=name,
                            actor=f"citizen:{citizen.id}",
                            detail=detail,
                        )
                    )
                if state != "rejected":
                    self._store_accumulator(db, citizen.id, payer, year, adjudication.accumulator)
                db.commit()
            except IntegrityError:
                db.rollback()
                self._refuse_duplicate(row.invoice_id, payer)
                raise
        if state == "in_review":
            with services.lock:
                services.session.ledger.lock_invoice(services.session.payers[payer], row.invoice_id)
        return claim

    def _verified(self, source: str | bytes) -> tuple[Any, models.Invoice | None]:
        """The verdict and the stored invoice; refuses anything that does not verify."""
        from api.routes.qr import payload_of
        from verifier.qr import encode_payload

        services = self._services
        row: models.Invoice | None = None
        key = invoice_key(source) if isinstance(source, str) else None
        if key is not None:
            with services.sessions() as db:
                row = db.get(models.Invoice, key)
            if row is None:
                raise ClaimRefused(404, "invoice_not_found", "no such invoice of yours")
            source = encode_payload(payload_of(services, row))
        verdict, _ = services.verification.verify(source)
        if not verdict.valid:
            failed = next(s for s in verdict.steps if s.status == "failed")
            raise ClaimRefused(
                422,
                "verification_failed",
                failed.message_en,
                step=failed.step,
                step_code=failed.code,
                message_zh=failed.message_zh,
            )
        if row is None and verdict.invoice_id is not None:
            with services.sessions() as db:
                row = db.get(models.Invoice, verdict.invoice_id)
        return verdict, row

    def _refuse_before_basic(self, invoice_id: bytes, payer: str) -> None:
        """Payers chain: basic insurance first, the others pay from what it left, so they
        wait until the basic claim is final (paid or rejected)."""
        if payer == FIRST_PAYER:
            return
        basic = self._claims_of(invoice_id).get(FIRST_PAYER)
        if basic is None or basic.state not in ("paid", "rejected"):
            raise ClaimRefused(
                409,
                "basic_first",
                "claim from basic medical insurance first; the other payers pay from what it "
                "leaves once it has paid or refused",
                basic_claim=basic.id if basic else None,
                basic_state=basic.state if basic else None,
            )

    def _refuse_duplicate(self, invoice_id: bytes, payer: str) -> None:
        first = self._claims_of(invoice_id).get(payer)
        if first is not None:
            raise ClaimRefused(
                409,
                "duplicate_claim",
                f"this invoice was claimed from {payer} already as {first.id}",
                first_claim=first.id,
                first_state=first.state,
            )

    def _claims_of(self, invoice_id: bytes) -> dict[str, models.Claim]:
        with self._services.sessions() as db:
            return {
                c.payer: c
                for c in db.scalars(
                    select(models.Claim).where(models.Claim.invoice_id == invoice_id)
                )
            }

    def _history(
        self, db: Session, citizen: models.Citizen, claimed: Invoice, invoice_id: bytes
    ) -> list[claims.ClaimInvoice]:
        """The citizen's other valid invoices for the audit rules. Lines are loaded only for
        invoices whose days overlap the claimed one's (what repeated-charge rules compare);
        readmission and overlapping stays need the headers alone."""
        rows = db.scalars(
            select(models.Invoice).where(
                models.Invoice.patient_id_hash == citizen.id_number_hash,
                models.Invoice.invoice_id != invoice_id,
                models.Invoice.voided_by.is_(None),
            )
        )
        levels = dict(db.execute(select(models.Hospital.code, models.Hospital.level)).all())
        first, last = _days(claimed.issued_at, claimed.admitted_on, claimed.discharged_on)
        history = []
        for r in rows:
            start, end = _days(r.issued_at, r.admitted_on, r.discharged_on)
            invoice = load_invoice(db, r) if start <= last and first <= end else _header_only(r)
            history.append(
                claim_invoice(invoice, levels.get(r.hospital, 0), f"{r.bill_code}-{r.bill_number}")
            )
        return history

    @staticmethod
    def _store_accumulator(
        db: Session, citizen_id: int, payer: str, year: int, accumulator: claims.Accumulator
    ) -> None:
        row = db.get(models.PayerAccumulator, (citizen_id, payer, year))
        if row is None:
            db.add(
                models.PayerAccumulator(
                    citizen_id=citizen_id,
                    payer=payer,
                    year=year,
                    pools=_accumulator_to_json(accumulator),
                )
            )
        else:
            row.pools = _accumulator_to_json(accumulator)

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
                rows = db.execute(
                    select(models.Claim, models.Invoice)
                    .join(models.Invoice, models.Invoice.invoice_id == models.Claim.invoice_id)
                    .where(models.Claim.state == "approved", models.Claim.payer == payer)
                    .order_by(models.Claim.created_at)
                ).all()
                if not rows:
                    continue
                db.execute(
                    update(models.Claim)
                    .where(models.Claim.id.in_([c.id for c, _ in rows]))
                    .values(state="settling")
                )
                db.commit()
            requests = [
                SettlementRequest(
                    c.id,
                    InvoiceLeaf(i.invoice_id, i.record_hash, i.hospital, i.total),
                    c.amount_fen,
                )
                for c, i in rows
            ]
            with services.lock:
                outcomes = services.sequencer.settle(account, requests)
            now = datetime.now(UTC)
            with services.sessions() as db:
                for outcome in outcomes:
                    ref = outcome.request.reference
                    if outcome.receipt is not None:
                        self._paid(db, ref, outcome.receipt.tx_hash, now)
                        paid += 1
                    else:
                        self._refused(db, ref, outcome.error, now)
                db.commit()
        return paid

    def _paid(self, db: Session, claim_id: str, tx_hash: bytes, now: datetime) -> None:
        claim = db.get(models.Claim, claim_id)
        assert claim is not None
        for state in ("settled", "paid"):
            db.add(
                models.ClaimEvent(
                    claim_id=claim_id,
                    at=now,
                    state=state,
                    actor="sequencer",
                    detail={"tx": "0x" + tx_hash.hex()},
                )
            )
        claim.state, claim.settle_tx, claim.updated_at = "paid", tx_hash, now
        if db.get(models.Payment, claim_id) is None:
            db.add(
                models.Payment(
                    claim_id=claim_id, amount_fen=claim.amount_fen, tx_hash=tx_hash, paid_at=now
                )
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
            now = datetime.now(UTC)
            for claim in stuck:
                account = services.session.payers[claim.payer].address
                tx = settled.get((claim.invoice_id, account))
                if tx is not None:
                    self._paid(db, claim.id, tx, now)
                else:
                    claim.state = "approved"
            db.commit()


def _days(issued_at: datetime, admitted: date | None, discharged: date | None) -> tuple[date, date]:
    """The calendar days (China Standard Time) an invoice's services span."""
    issued = issued_at.astimezone(claims.CHINA_TZ).date()
    return (admitted or issued, max(discharged or issued, issued))


def _header_only(row: models.Invoice) -> Invoice:
    from verifier.invoice import VisitType

    return Invoice(
        row.bill_code,
        row.bill_number,
        row.check_code,
        row.hospital,
        row.issued_at,
        VisitType(row.visit_type),
        row.admitted_on,
        row.discharged_on,
        row.department,
        tuple(row.diagnoses),
        row.patient_commitment,
        row.total,
        row.insurance_paid,
        row.patient_paid,
        (),
    )


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
        "categories": [_plain(c) for c in adjudication.categories],
        # One sentence per line, as the citizen reads it ("line by line").
        "lines": [
            {
                "line": ln.index + 1,
                "name": ln.name,
                "amount_fen": ln.amount_fen,
                "zh": ln.note.zh,
                "en": ln.note.en,
            }
            for ln in adjudication.lines
        ],
    }


def _plain(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return {k: _plain(v) for k, v in asdict(value).items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


__all__: Sequence[str] = ("STATES", "ClaimRefused", "ClaimService")
