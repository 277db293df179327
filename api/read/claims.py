"""The claim side's reads: claims as their citizen, a reviewer or an auditor sees them, and the
auditor's statistics.

Views are loaded in batch: a list of claims costs the same few queries whatever its length
(the invoices, their lines, the payments and, with the history, the events, each one query
per 500 claims), never one query per claim.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from api.db import models
from api.db.models import DECIDED_STATES, ClaimState
from api.db.queries import chunks
from api.flows import ports
from api.flows.explanation import readable
from api.read.invoices import find_invoice, load_invoices, rows_by_id
from claims import CHINA_TZ


@dataclass(frozen=True)
class ClaimView:
    """A claim with what its readers see of it: its invoice's reference, its explanation line
    by line, its payment (None until paid) and, when asked, its history (each event as
    ``{"at", "state", "actor", "detail"}``)."""

    claim: models.Claim
    reference: str
    adjudication: dict[str, Any]
    payment: models.Payment | None
    history: list[dict[str, Any]] = field(default_factory=list)


class ClaimReads:
    """Claims by whom they concern, loaded with their views in batch."""

    def __init__(self, uow: ports.UnitOfWork) -> None:
        self._uow = uow

    def one(self, claim_id: str) -> models.Claim | None:
        with self._uow() as db:
            return db.get(models.Claim, claim_id)

    def of_citizen(self, citizen_id: int) -> list[ClaimView]:
        """The citizen's claims, newest first."""
        return self._listed(
            select(models.Claim)
            .where(models.Claim.citizen_id == citizen_id)
            .order_by(models.Claim.created_at.desc()),
            history=False,
        )

    def in_review(self, payer: str | None) -> list[ClaimView]:
        """Claims waiting for manual review (of ``payer``, or every payer's), oldest first."""
        query = select(models.Claim).where(models.Claim.state == ClaimState.IN_REVIEW)
        if payer is not None:
            query = query.where(models.Claim.payer == payer)
        return self._listed(query.order_by(models.Claim.created_at), history=False)

    def search(
        self, state: str | None, payer: str | None, invoice: str | None, limit: int
    ) -> list[ClaimView]:
        """Claims in ``state``, of ``payer``, of the invoice named by ``invoice`` (an id or a
        reference: raises the refusals of ``api.read.invoices.find_invoice``), newest first,
        at most ``limit``, with their history."""
        query = select(models.Claim)
        if state:
            query = query.where(models.Claim.state == state)
        if payer is not None:
            query = query.where(models.Claim.payer == payer)
        if invoice:
            with self._uow() as db:
                invoice_id = find_invoice(db, invoice).invoice_id
            query = query.where(models.Claim.invoice_id == invoice_id)
        return self._listed(
            query.order_by(models.Claim.created_at.desc()).limit(limit), history=True
        )

    def views(self, claims: Sequence[models.Claim], history: bool = False) -> list[ClaimView]:
        """The views of these claims, in their order."""
        with self._uow() as db:
            return _views(db, claims, history)

    def _listed(self, query: Select[models.Claim], history: bool) -> list[ClaimView]:
        with self._uow() as db:
            return _views(db, list(db.scalars(query)), history)

    def statistics(self) -> dict[str, Any]:
        """Figures for the auditor's charts: invoices and claims per day (China Standard
        Time), amounts, the approval rate, the time from claim to payment, and the audit
        hits by rule."""
        with self._uow() as db:
            invoices = db.execute(select(models.Invoice.issued_at, models.Invoice.total)).all()
            claim_rows = db.execute(
                select(
                    models.Claim.created_at,
                    models.Claim.state,
                    models.Claim.amount_fen,
                    models.Claim.audit_hits,
                    models.Claim.id,
                )
            ).all()
            paid_at = dict(
                db.execute(select(models.Payment.claim_id, models.Payment.paid_at)).all()
            )
        return _statistics(invoices, claim_rows, paid_at)


def _views(db: Session, claims: Sequence[models.Claim], history: bool) -> list[ClaimView]:
    ids = [c.id for c in claims]
    invoices = rows_by_id(db, {c.invoice_id for c in claims})
    full = load_invoices(db, invoices.values())
    payments: dict[str, models.Payment] = {}
    events: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for chunk in chunks(sorted(set(ids))):
        payments.update(
            (p.claim_id, p)
            for p in db.scalars(select(models.Payment).where(models.Payment.claim_id.in_(chunk)))
        )
        if history:
            for e in db.scalars(
                select(models.ClaimEvent)
                .where(models.ClaimEvent.claim_id.in_(chunk))
                .order_by(models.ClaimEvent.id)
            ):
                events[e.claim_id].append(
                    {"at": e.at.isoformat(), "state": e.state, "actor": e.actor, "detail": e.detail}
                )
    views = []
    for claim in claims:
        invoice = invoices[claim.invoice_id]  # claims refer to stored invoices
        views.append(
            ClaimView(
                claim=claim,
                reference=f"{invoice.bill_code}-{invoice.bill_number}",
                adjudication=readable(claim.adjudication, full[claim.invoice_id]),
                payment=payments.get(claim.id),
                history=events.get(claim.id, []),
            )
        )
    return views


def _statistics(
    invoices: Sequence[Any], claim_rows: Sequence[Any], paid_at: dict[str, datetime]
) -> dict[str, Any]:
    per_day: dict[str, dict[str, int]] = defaultdict(
        lambda: {"invoices": 0, "invoice_fen": 0, "claims": 0, "claim_fen": 0}
    )
    for issued_at, total in invoices:
        day = per_day[issued_at.astimezone(CHINA_TZ).date().isoformat()]
        day["invoices"] += 1
        day["invoice_fen"] += total
    states: Counter[str] = Counter()
    hits: Counter[str] = Counter()
    seconds_to_pay = []
    decided_on: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # approved, decided
    paid_seconds_on: dict[str, list[float]] = defaultdict(list)
    for created_at, state, amount, audit_hits, claim_id in claim_rows:
        key = created_at.astimezone(CHINA_TZ).date().isoformat()
        day = per_day[key]
        day["claims"] += 1
        day["claim_fen"] += amount
        states[state] += 1
        hits.update(h["code"] for h in audit_hits)
        if state in DECIDED_STATES:
            decided_on[key][1] += 1
            decided_on[key][0] += state != ClaimState.REJECTED
        if claim_id in paid_at:
            seconds = (paid_at[claim_id] - created_at).total_seconds()
            seconds_to_pay.append(seconds)
            paid_seconds_on[key].append(seconds)
    for key, day in per_day.items():
        approved_n, decided_n = decided_on.get(key, [0, 0])
        day["approval_rate_permille"] = approved_n * 1000 // decided_n if decided_n else 0
        paid_list = paid_seconds_on.get(key, [])
        day["seconds_to_payment"] = round(sum(paid_list) / len(paid_list)) if paid_list else 0
    decided = sum(
        states[s]
        for s in (ClaimState.PAID, ClaimState.APPROVED, ClaimState.SETTLED, ClaimState.REJECTED)
    )
    approved = decided - states[ClaimState.REJECTED]
    return {
        "per_day": [{"day": d, **v} for d, v in sorted(per_day.items())],
        "claims_by_state": dict(states),
        "approval_rate": round(approved / decided, 4) if decided else None,
        "seconds_to_payment_mean": round(sum(seconds_to_pay) / len(seconds_to_pay), 1)
        if seconds_to_pay
        else None,
        "audit_hits": dict(hits),
    }
