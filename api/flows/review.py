"""The review step: a payer's reviewer approves or refuses a claim that the audit sent to
manual review (``in_review``). Refusing gives back what the claim took of the citizen's
yearly totals and releases the payer's lock on chain; approving leaves the claim to the next
settlement (``api.flows.settle``)."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from api.db import models
from api.db.models import ClaimState
from api.flows import ports
from api.flows import totals as claim_totals
from api.refusals import Conflict, NotFound, Refused


class ReviewFlow:
    """A reviewer's decision on a claim in review."""

    def __init__(
        self,
        uow: ports.UnitOfWork,
        ledger: ports.Ledger,
        clock: ports.Clock = ports.utc_now,
    ) -> None:
        self._uow = uow
        self._ledger = ledger
        self._clock = clock

    def decide(self, claim_id: str, approve: bool, reviewer: str, reason: str | None) -> None:
        """Approves or rejects the claim; rejecting gives back what the claim took of the
        citizen's yearly totals and releases the payer's lock.

        One decision wins: the state moves by ``UPDATE ... WHERE state = 'in_review'`` and
        only the reviewer whose update changed the row goes on (and releases the lock, once);
        every other gets ``409 already_decided`` naming the winner's decision. A claim that
        settlement picked up is no longer in review, so it cannot be decided. Raises
        ``NotFound`` (``claim_not_found``) and ``Conflict`` (``already_decided``,
        ``not_in_review``)."""
        claim = models.Claim
        now = self._clock()
        state = ClaimState.IN_REVIEW.to(ClaimState.APPROVED if approve else ClaimState.REJECTED)
        with self._uow() as db:
            result = db.execute(
                update(claim)
                .where(claim.id == claim_id, claim.state == ClaimState.IN_REVIEW)
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
                raise not_decidable(db, claim_id)
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
            self._ledger.release_invoice(payer, invoice_id)


def not_decidable(db: Session, claim_id: str) -> Refused:
    """Why a claim cannot be decided: unknown, decided already (by whom, when, how), or
    never in review."""
    found = db.get(models.Claim, claim_id)
    if found is None:
        return NotFound("claim_not_found", f"no claim {claim_id}")
    events = list(
        db.scalars(
            select(models.ClaimEvent)
            .where(models.ClaimEvent.claim_id == claim_id)
            .order_by(models.ClaimEvent.id)
        )
    )
    states = [e.state for e in events]
    if ClaimState.IN_REVIEW in states:
        after = events[states.index(ClaimState.IN_REVIEW) + 1 :]
        decision = next(
            (e for e in after if e.state in (ClaimState.APPROVED, ClaimState.REJECTED)), None
        )
        if decision is not None:
            return Conflict(
                "already_decided",
                f"claim {claim_id} was {decision.state} by {decision.actor}",
                decision=decision.state,
                decided_by=decision.actor,
                decided_at=decision.at.isoformat(),
                state=found.state,
            )
    return Conflict("not_in_review", f"claim {claim_id} is {found.state}", state=found.state)
