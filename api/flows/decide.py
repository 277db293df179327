"""Deciding verified claims: the duplicate and basic-first checks, adjudication by the payer's
policy on the citizen's yearly totals, and the smart-audit rules, over what the database says
of the citizens and invoices involved.

A ``Decider`` takes claims that passed verification (``Pending``: plain values, so that they
cross a process boundary) and returns a decision or a refusal for each, with the yearly totals
they moved; it writes nothing. The claim flow stores the results in one transaction. Claims
are decided in order: a later claim sees the earlier ones of the same batch. Every claim of an
invoice is its patient's, so a batch split by citizen is decided exactly as whole; large batches
are split in two and half is decided in a worker process (``decide_in_worker``), on the second
core.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, load_only

import claims
from api.adapters.catalogue import load_catalogue
from api.db import models
from api.db.models import UNPAID_STATES, ClaimState
from api.db.queries import chunks
from api.db.session import make_engine, session_factory
from api.flows import ports
from api.flows import totals as claim_totals
from api.flows.explanation import explain
from api.flows.verify import VerifyFlow
from api.read.invoices import line_rows, rows_by_id
from api.refusals import Conflict, Refused

FIRST_PAYER = "basic"
_ITEM_CLASS = {c.value: c for c in claims.ItemClass}  # by value: the verifier's class too


@dataclass(frozen=True)
class Pending:
    """A verified claim waiting for its decision: whose, of which invoice, from which payer,
    and what verification found (its step codes, and what every payer has paid so far as the
    status step read it on chain)."""

    index: int  # in the caller's batch
    citizen_id: int
    id_number_hash: bytes
    sex: str
    birth_date: date
    flags: frozenset[str]  # eligibility facts, named as the policies name them
    payer: str
    channel: str
    invoice_id: bytes
    steps: tuple[str, ...]
    paid_on_chain: int


def eligibility_flags(citizen: models.Citizen) -> frozenset[str]:
    """The citizen's eligibility facts as the policies name them (``eligible_flags`` in
    ``claims/policies/*.toml``).

    The citizen's record has one such fact, ``assistance_eligible``, read as ``low_income``
    (低保); ``extreme_poverty`` (特困) and ``near_low_income`` (低边), which medical assistance
    also accepts, have no column yet, so they are never set."""
    return frozenset({"low_income"}) if citizen.assistance_eligible else frozenset()


def pending(
    index: int,
    citizen: models.Citizen,
    payer: str,
    channel: str,
    invoice_id: bytes,
    steps: tuple[str, ...],
    paid_on_chain: int,
) -> Pending:
    """A claim of ``citizen`` waiting for its decision (or priced again at settlement)."""
    return Pending(
        index,
        citizen.id,
        citizen.id_number_hash,
        citizen.sex,
        citizen.birth_date,
        eligibility_flags(citizen),
        payer,
        channel,
        invoice_id,
        steps,
        paid_on_chain,
    )


@dataclass(frozen=True)
class Decided:
    """A decided claim: its row (``models.Claim`` columns) and its events' rows."""

    claim: dict[str, Any]
    events: list[dict[str, Any]]


@dataclass
class Decisions:
    """A decision or a refusal per pending claim, by the claim's index in the batch, and the
    yearly totals that moved: ``totals[(citizen id, payer, year)] = (pools, version read)``,
    the version ``None`` for totals not stored before (see ``api.flows.totals.store``)."""

    outcomes: list[tuple[int, Decided | Refused]] = field(default_factory=list)
    totals: dict[tuple[int, str, int], tuple[dict[str, Any], int | None]] = field(
        default_factory=dict
    )

    def merged(self, other: Decisions) -> Decisions:
        return Decisions(self.outcomes + other.outcomes, {**self.totals, **other.totals})


class Decider:
    """Decides pending claims with the bundled policies and audit rules, against the audit
    catalogue it is given (``api.adapters.catalogue``)."""

    def __init__(self, uow: ports.UnitOfWork, catalogue: claims.Catalogue) -> None:
        self._uow = uow
        self.policies = claims.bundled_policies()
        self.rules = claims.load_rules()
        self.catalogue = catalogue
        self.payer_order = payer_order(self.policies)

    def decide(
        self, pending: Sequence[Pending], verified: Mapping[bytes, int], now: datetime
    ) -> Decisions:
        """Decisions for ``pending``, in order; ``verified`` counts the verifications of the
        batch per invoice (they count for the "verified unusually often" rule)."""
        decisions = Decisions()
        with self._uow() as db:
            known = _Known.load(db, pending, verified)
        for p in pending:
            try:
                refuse_duplicate(known.existing, p.invoice_id, p.payer)
                refuse_before_basic(known.existing, p.invoice_id, p.payer)
            except Refused as refusal:
                decisions.outcomes.append((p.index, refusal))
                continue
            decided = self._adjudicated(p, known, now)
            claim = decided.claim
            known.existing[p.invoice_id, p.payer] = (claim["id"], claim["state"])
            if claim["state"] in UNPAID_STATES:
                known.unpaid[p.invoice_id, p.payer] = claim["amount_fen"]
            decisions.outcomes.append((p.index, decided))
        decisions.totals = known.moved_totals()
        return decisions

    def reprice(
        self,
        db: Session,
        pending: Sequence[tuple[Pending, datetime]],
        totals: dict[tuple[int, str, int], claims.Accumulator],
    ) -> list[tuple[claims.Adjudication, dict[str, Any] | None]]:
        """Stored claims priced again, each (``Pending``, the time it was claimed) on its
        ``paid_on_chain``, in order, on ``totals`` (the citizens' yearly totals without what
        these claims took; moved on in place): each adjudication and what it takes of the
        totals (None when it pays nothing). The audit is not run again: it does not depend on
        the price."""
        known = _Known.load(db, [p for p, _ in pending], {})
        repriced: list[tuple[claims.Adjudication, dict[str, Any] | None]] = []
        for p, claimed_at in pending:
            invoice = replace(known.view(known.rows[p.invoice_id]), claimed_at=claimed_at)
            key = (p.citizen_id, p.payer, invoice.policy_year)
            accumulator = totals.get(key) or claims.Accumulator.empty(p.payer, key[2])
            adjudication = self.price(p, invoice, accumulator)
            taken = None
            if adjudication.status == "approved" and adjudication.amount_fen > 0:
                taken = usage(self.policies[p.payer], invoice, adjudication)
                totals[key] = adjudication.accumulator
            repriced.append((adjudication, taken))
        return repriced

    def earlier_unpaid(self, unpaid: Mapping[tuple[bytes, str], int], p: Pending) -> int:
        """What the claims of payers before ``p.payer`` in the payer order will pay on its
        invoice and have not been paid yet (``unpaid``: (invoice id, payer) -> amount)."""
        rank = self.payer_order.index(p.payer)
        return sum(
            amount
            for (invoice_id, payer), amount in unpaid.items()
            if invoice_id == p.invoice_id
            and payer in self.payer_order
            and self.payer_order.index(payer) < rank
        )

    def price(
        self, p: Pending, invoice: claims.ClaimInvoice, accumulator: claims.Accumulator
    ) -> claims.Adjudication:
        """The payer's adjudication of ``invoice`` (with its ``claimed_at``) on
        ``accumulator``, after what ``p.paid_on_chain`` says earlier payers pay."""
        person = claims.Citizen(claims.Sex(p.sex), p.birth_date, p.flags)
        return claims.adjudicate(
            self.policies[p.payer], invoice, person, accumulator, already_paid_fen=p.paid_on_chain
        )

    def _adjudicated(self, p: Pending, known: _Known, now: datetime) -> Decided:
        """The claim, adjudicated by the payer's policy and screened by the audit rules; the
        citizen's yearly totals in ``known`` move on unless it is rejected.

        A payer later in the payer order prices after what the chain paid and what the
        earlier payers' claims not yet paid will pay (a batch's or a concurrent claim), so
        claims of several payers made together never add up above the invoice."""
        row = known.rows[p.invoice_id]
        presented = replace(known.view(row), claimed_at=now)
        person = claims.Citizen(claims.Sex(p.sex), p.birth_date, p.flags)
        year = presented.policy_year
        p = replace(p, paid_on_chain=p.paid_on_chain + self.earlier_unpaid(known.unpaid, p))
        adjudication = self.price(p, presented, known.accumulator(p.citizen_id, p.payer, year))
        history = [
            known.view(other)
            for other in known.patients.get(p.id_number_hash, ())
            if other.invoice_id != p.invoice_id
        ]
        hits = claims.audit(
            presented, person, self.catalogue, history, known.counts[p.invoice_id], self.rules
        )
        if adjudication.status != "approved" or adjudication.amount_fen == 0:
            state, reason = ClaimState.REJECTED, adjudication.reason.code
        elif claims.needs_review(hits):
            state, reason = ClaimState.IN_REVIEW, "audit_hits"
        else:
            state, reason = ClaimState.APPROVED, None
        state = ClaimState.ADJUDICATED.to(state)
        if state != ClaimState.REJECTED:
            known.accumulators[p.citizen_id, p.payer, year] = adjudication.accumulator
        claim_id = "CLM" + secrets.token_hex(6).upper()
        events = [
            (ClaimState.SUBMITTED, {"channel": p.channel}),
            (ClaimState.VERIFIED, {"steps": list(p.steps)}),
            (
                ClaimState.ADJUDICATED,
                {"amount_fen": adjudication.amount_fen, "reason": adjudication.reason.code},
            ),
            (state, {"reason": reason, "hits": [h.code for h in hits]}),
        ]
        return Decided(
            {
                "id": claim_id,
                "invoice_id": p.invoice_id,
                "payer": p.payer,
                "citizen_id": p.citizen_id,
                "channel": p.channel,
                "state": state,
                "reason_code": reason,
                "amount_fen": adjudication.amount_fen if state != ClaimState.REJECTED else 0,
                "adjudication": {
                    **explain(adjudication),
                    "usage": None
                    if state == ClaimState.REJECTED
                    else usage(self.policies[p.payer], presented, adjudication),
                },
                "audit_hits": [asdict(h) for h in hits],
                "created_at": now,
                "updated_at": now,
            },
            [
                {
                    "claim_id": claim_id,
                    "at": now,
                    "state": name,
                    "actor": f"citizen:{p.citizen_id}",
                    "detail": detail,
                }
                for name, detail in events
            ],
        )


# -- the worker process ------------------------------------------------------------------------

_worker: Decider | None = None


def start_worker(database_url: str, catalogue_path: Path) -> None:
    """Initialises a worker process: its own engine (never the parent's connections), the
    same audit catalogue as the parent's."""
    global _worker
    _worker = Decider(session_factory(make_engine(database_url)), load_catalogue(catalogue_path))


def decide_in_worker(
    pending: Sequence[Pending], verified: Mapping[bytes, int], now: datetime
) -> Decisions:
    assert _worker is not None, "start_worker first"
    return _worker.decide(pending, verified, now)


def payer_order(policies: Mapping[str, claims.Policy]) -> list[str]:
    """The payer order on one invoice: basic insurance first, then the others by kind
    (critical illness, assistance, commercial: ``claims.in_chain_order``), then by payer id."""
    by_kind = claims.in_chain_order(sorted(policies.values(), key=lambda p: p.payer))
    return sorted((p.payer for p in by_kind), key=lambda payer: payer != FIRST_PAYER)  # stable


def usage(
    policy: claims.Policy, invoice: claims.ClaimInvoice, adjudication: claims.Adjudication
) -> dict[str, Any]:
    """What a claim takes of the citizen's yearly totals with its payer: the policy year, the
    pool, the deductible it used and its amount (given back if it ends unpaid)."""
    return {
        "year": invoice.policy_year,
        # The pool the adjudication counted in (a scheme's own, for a format-2 bill); a claim
        # rejected before any arithmetic has none and falls back to the visit's.
        "pool": adjudication.pool or policy.benefit_for(invoice.visit_type).pool,
        "deductible_fen": adjudication.deductible_applied_fen,
        "paid_fen": adjudication.amount_fen,
    }


# -- the checks ----------------------------------------------------------------------------------

Existing = dict[tuple[bytes, str], tuple[str, str]]
"""The claims of some invoices: (invoice id, payer) -> (claim id, state)."""


def claims_of(db: Session, invoice_ids: Iterable[bytes]) -> Existing:
    """The claims of these invoices, by (invoice id, payer)."""
    wanted = sorted(set(invoice_ids))
    found: Existing = {}
    claim = models.Claim
    for chunk in chunks(wanted):
        for c in db.scalars(
            select(claim)
            .options(load_only(claim.id, claim.invoice_id, claim.payer, claim.state))
            .where(claim.invoice_id.in_(chunk))
        ):
            found[c.invoice_id, c.payer] = (c.id, c.state)
    return found


def unpaid_of(db: Session, invoice_ids: Iterable[bytes]) -> dict[tuple[bytes, str], int]:
    """The amounts of the claims of these invoices that will be paid and are not yet (approved,
    in review, settling), by (invoice id, payer)."""
    wanted = sorted(set(invoice_ids))
    found: dict[tuple[bytes, str], int] = {}
    claim = models.Claim
    for chunk in chunks(wanted):
        for invoice_id, payer, amount in db.execute(
            select(claim.invoice_id, claim.payer, claim.amount_fen).where(
                claim.invoice_id.in_(chunk), claim.state.in_(UNPAID_STATES)
            )
        ):
            found[invoice_id, payer] = amount
    return found


def refuse_duplicate(existing: Existing, invoice_id: bytes, payer: str) -> None:
    """One claim per invoice and payer, whatever the channel."""
    first = existing.get((invoice_id, payer))
    if first is not None:
        raise Conflict(
            "duplicate_claim",
            f"this invoice was claimed from {payer} already as {first[0]}",
            first_claim=first[0],
            first_state=first[1],
        )


def refuse_before_basic(existing: Existing, invoice_id: bytes, payer: str) -> None:
    """Payers chain: basic insurance first, the others pay from what it left, so they wait
    until the basic claim is final (paid or rejected)."""
    if payer == FIRST_PAYER:
        return
    basic = existing.get((invoice_id, FIRST_PAYER))
    if basic is None or basic[1] not in (ClaimState.PAID, ClaimState.REJECTED):
        raise Conflict(
            "basic_first",
            "claim from basic medical insurance first; the other payers pay from what it "
            "leaves once it has paid or refused",
            basic_claim=basic[0] if basic else None,
            basic_state=basic[1] if basic else None,
        )


# -- what a batch reads --------------------------------------------------------------------------


@dataclass
class _Known:
    """What the claims of a batch read from the database, loaded once for the batch."""

    rows: dict[bytes, models.Invoice]  # the claimed invoices
    levels: dict[str, int]  # hospital code -> level
    lines: dict[bytes, tuple[claims.ClaimLine, ...]]  # claimed, and overlapping history
    existing: Existing  # this batch's claims too, as they are decided
    unpaid: dict[tuple[bytes, str], int]  # amounts of claims not yet paid, this batch's too
    counts: dict[bytes, int]  # verifications, this batch's included
    patients: dict[bytes, list[models.Invoice]]  # each patient's valid invoices
    accumulators: dict[tuple[int, str, int], claims.Accumulator]
    stored: claim_totals.Stored  # the totals as loaded, with their versions
    views: dict[bytes, claims.ClaimInvoice] = field(default_factory=dict)

    @classmethod
    def load(cls, db: Session, pending: Sequence[Pending], verified: Mapping[bytes, int]) -> _Known:
        rows = rows_by_id(db, [p.invoice_id for p in pending])
        counts = VerifyFlow.counts_of(db, rows)
        for invoice_id in counts:
            counts[invoice_id] += verified.get(invoice_id, 0)
        patients: dict[bytes, list[models.Invoice]] = {}
        hashes = sorted({p.id_number_hash for p in pending})
        for chunk in chunks(hashes):
            for row in db.scalars(
                select(models.Invoice).where(
                    models.Invoice.patient_id_hash.in_(chunk),
                    models.Invoice.voided_by.is_(None),
                )
            ):
                patients.setdefault(row.patient_id_hash, []).append(row)  # type: ignore[arg-type]
        # Lines of the claimed invoices, and of the history whose days overlap theirs (what
        # the repeated-charge rules compare); the other rules need headers alone.
        with_lines = set(rows)
        for row in rows.values():
            first, last = _days(row.issued_at, row.admitted_on, row.discharged_on)
            for other in patients.get(row.patient_id_hash, ()):  # type: ignore[arg-type]
                start, end = _days(other.issued_at, other.admitted_on, other.discharged_on)
                if start <= last and first <= end:
                    with_lines.add(other.invoice_id)
        stored = claim_totals.load(db, (p.citizen_id for p in pending))
        levels = db.execute(select(models.Hospital.code, models.Hospital.level))
        return cls(
            rows=rows,
            levels={code: level for code, level in levels},
            lines=_claim_lines(db, with_lines),
            existing=claims_of(db, rows),
            # basic insurance is first in every chain: only the others price after claims
            unpaid=unpaid_of(db, {p.invoice_id for p in pending if p.payer != FIRST_PAYER}),
            counts=counts,
            patients=patients,
            accumulators={
                key: claim_totals.from_json(key[1], key[2], pools)
                for key, (pools, _) in stored.items()
            },
            stored=stored,
        )

    def accumulator(self, citizen_id: int, payer: str, year: int) -> claims.Accumulator:
        """The citizen's yearly totals with the payer, this batch's claims included."""
        found = self.accumulators.get((citizen_id, payer, year))
        return found if found is not None else claims.Accumulator.empty(payer, year)

    def moved_totals(self) -> dict[tuple[int, str, int], tuple[dict[str, Any], int | None]]:
        moved = {}
        for key, accumulator in self.accumulators.items():
            pools = claim_totals.to_json(accumulator)
            before = self.stored.get(key)
            if before is None or pools != before[0]:
                moved[key] = (pools, None if before is None else before[1])
        return moved

    def view(self, row: models.Invoice) -> claims.ClaimInvoice:
        """The claims package's view of a stored invoice: with its lines when loaded (the
        claimed invoices, the overlapping history), else its header."""
        view = self.views.get(row.invoice_id)
        if view is None:
            view = self.views[row.invoice_id] = claims.ClaimInvoice(
                reference=f"{row.bill_code}-{row.bill_number}",
                hospital=row.hospital,
                hospital_level=claims.HospitalLevel(self.levels.get(row.hospital, 0)),
                visit_type=claims.VisitType(row.visit_type),
                issued_at=row.issued_at,
                total_fen=row.total,
                lines=self.lines.get(row.invoice_id, ()),
                diagnoses=tuple(row.diagnoses),
                admitted_on=row.admitted_on,
                discharged_on=row.discharged_on,
                **_till_of(row.bill),
            )
        return view


def _till_of(bill: dict[str, Any] | None) -> dict[str, Any]:
    """A format-2 bill's scheme and the till's split as the claims package reads them (a
    format-1 invoice has neither: it is adjudicated on its lines alone)."""
    if bill is None:
        return {}
    p = bill["payment"]
    return {
        "scheme": claims.Scheme(bill["scheme"]),
        "till": claims.TillSplit(
            fund_fen=p["fund"],
            account_fen=p["account"],
            other_fen=p["other"],
            cash_fen=p["cash"],
            copay_fen=p["copay"],
            deductible_fen=p["deductible"],
            self_pay_fen=p["self_pay"],
        ),
    }


def _claim_lines(
    db: Session, invoice_ids: Iterable[bytes]
) -> dict[bytes, tuple[claims.ClaimLine, ...]]:
    """The lines of these invoices as the claims package reads them."""
    lines: dict[bytes, list[claims.ClaimLine]] = {iid: [] for iid in invoice_ids}
    for iid, line in line_rows(db, lines):
        lines[iid].append(
            claims.ClaimLine(
                line.code,
                line.name,
                _ITEM_CLASS[line.item_class],
                line.unit_price,
                line.quantity_milli,
                line.amount,
                line.department,
                line.time,
            )
        )
    return {iid: tuple(found) for iid, found in lines.items()}


def _days(issued_at: datetime, admitted: date | None, discharged: date | None) -> tuple[date, date]:
    """The calendar days (China Standard Time) an invoice's services span."""
    issued = issued_at.astimezone(claims.CHINA_TZ).date()
    return (admitted or issued, max(discharged or issued, issued))
