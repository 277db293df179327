"""Claims: one tap by a citizen, review by a payer's reviewer, history for everyone involved."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field, ValidationError, model_validator

from api.db import models
from api.deps import (
    AuditorDep,
    CitizenDep,
    CitizensDep,
    ClaimDep,
    ClaimReadsDep,
    ImageLimitsDep,
    PhotoClaimLimiterDep,
    ReconciliationDep,
    ReviewDep,
    ReviewerDep,
    StaffDep,
    VerifyLimiterDep,
)
from api.errors import ApiError, as_api_error, too_many_requests
from api.flows.claim import ClaimFlow, ClaimRequest
from api.flows.verify import refuse_oversized_photo
from api.read.claims import ClaimReads, ClaimView
from api.refusals import Forbidden, Invalid, NotFound, Refused
from chain.errors import LedgerError

router = APIRouter(tags=["claims"])
log = logging.getLogger("zeroclaim.claims")


class ClaimBody(BaseModel):
    """A claim as sent: ``invoice`` (an id or BILLCODE-BILLNUMBER: the app's one tap) or
    ``qr_text``."""

    invoice: str | None = Field(None, max_length=80)
    qr_text: str | None = Field(None, max_length=4096)
    payer: str = Field("basic", pattern=r"^[a-z0-9_-]{1,32}$")

    @model_validator(mode="after")
    def _one(self) -> ClaimBody:
        if (self.invoice is None) == (self.qr_text is None):
            raise ValueError("send either invoice or qr_text")
        return self


class PaymentPublic(BaseModel):
    amount_fen: int
    transaction: str
    paid_at: datetime


class ClaimPublic(BaseModel):
    claim_id: str
    invoice_id: str
    reference: str
    payer: str
    channel: str
    state: str
    reason_code: str | None
    amount_fen: int
    adjudication: dict[str, Any]
    audit_hits: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime
    payment: PaymentPublic | None = None
    history: list[dict[str, Any]] = []


def _public(view: ClaimView) -> ClaimPublic:
    claim, payment = view.claim, view.payment
    return ClaimPublic(
        claim_id=claim.id,
        invoice_id="0x" + claim.invoice_id.hex(),
        reference=view.reference,
        payer=claim.payer,
        channel=claim.channel,
        state=claim.state,
        reason_code=claim.reason_code,
        amount_fen=claim.amount_fen,
        adjudication=view.adjudication,
        audit_hits=claim.audit_hits,
        created_at=claim.created_at,
        updated_at=claim.updated_at,
        payment=PaymentPublic(
            amount_fen=payment.amount_fen,
            transaction="0x" + payment.tx_hash.hex(),
            paid_at=payment.paid_at,
        )
        if payment
        else None,
        history=view.history,
    )


def _publics(views: list[ClaimView]) -> list[ClaimPublic]:
    return [_public(v) for v in views]


def _submit(
    flow: ClaimFlow,
    reads: ClaimReads,
    citizen: models.Citizen,
    source: str | bytes,
    payer: str,
    channel: str,
) -> ClaimPublic:
    """Submits the claim (a citizen's own failed attempts are limited: 429 ``rate_limited``)."""
    claim = flow.attempt(citizen, source, payer, channel)
    return _public(reads.views([claim])[0])


@router.post("/claims", response_model=ClaimPublic, status_code=201)
def claim(
    flow: ClaimDep, reads: ClaimReadsDep, citizen: CitizenDep, body: ClaimBody
) -> ClaimPublic:
    """One-tap claim of an invoice (or of a QR text) from a payer. Refused: an invoice that
    does not verify, someone else's invoice and a wrong check code (both as if unknown), a
    second claim of the invoice from the same payer (409, with the first claim's reference);
    too many failed attempts of the citizen (429)."""
    source = body.invoice if body.invoice is not None else body.qr_text
    assert source is not None
    channel = "app" if body.invoice is not None else "qr_text"
    return _submit(flow, reads, citizen, source, body.payer, channel)


@router.post(
    "/claims/photo",
    response_model=ClaimPublic,
    status_code=201,
    openapi_extra={
        "requestBody": {"content": {"image/png": {}, "image/jpeg": {}}, "required": True}
    },
)
async def claim_by_photo(
    flow: ClaimDep,
    reads: ClaimReadsDep,
    photo_limiter: PhotoClaimLimiterDep,
    verify_limiter: VerifyLimiterDep,
    image_limits: ImageLimitsDep,
    citizen: CitizenDep,
    request: Request,
    payer: Annotated[str, Query(pattern=r"^[a-z0-9_-]{1,32}$")] = "basic",
) -> ClaimPublic:
    """A claim from a photo of the invoice's QR code (the image bytes as the body).

    Reading a photo is the costliest request: it is limited per citizen and, with the
    verifications, per client (429 ``rate_limited``), and a photo whose header claims too
    many pixels is refused with 413 before it is decoded."""
    from starlette.concurrency import run_in_threadpool

    client = request.client.host if request.client else "unknown"
    for limiter, key, what in (
        (photo_limiter, str(citizen.id), "claims by photo"),
        (verify_limiter, client, "verifications"),
    ):
        wait = limiter.allow(key)
        if wait > 0:
            raise too_many_requests("rate_limited", f"too many {what}: retry in {wait:.0f} s", wait)
    data = await request.body()
    if not data:
        raise Invalid("image_missing", "send the photo's bytes as the request body")
    refuse_oversized_photo(data, image_limits)
    return await run_in_threadpool(_submit, flow, reads, citizen, data, payer, "qr_photo")


@router.get("/claims/mine", response_model=list[ClaimPublic])
def my_claims(reads: ClaimReadsDep, citizen: CitizenDep) -> list[ClaimPublic]:
    return _publics(reads.of_citizen(citizen.id))


@router.get("/claims/{claim_id}", response_model=ClaimPublic)
def claim_detail(reads: ClaimReadsDep, citizen: CitizenDep, claim_id: str) -> ClaimPublic:
    """A claim with every check and state change (the citizen's own claims)."""
    row = reads.one(claim_id)
    if row is None or row.citizen_id != citizen.id:
        raise NotFound("claim_not_found", f"no claim {claim_id} of yours")
    return _public(reads.views([row], history=True)[0])


def _own_payer(staff: StaffDep, payer: str | None) -> str | None:
    """The payer a search is limited to: a payer's staff see their own payer only."""
    if staff.role != "payer":
        return payer
    if payer is not None and payer != staff.payer:
        raise Forbidden("not_your_payer", f"you act for {staff.payer}", payer=staff.payer)
    return staff.payer


class ReviewDecision(BaseModel):
    approve: bool
    reason: str | None = Field(None, max_length=200)


@router.get("/review/queue", response_model=list[ClaimPublic])
def review_queue(
    reads: ClaimReadsDep, staff: StaffDep, payer: str | None = None
) -> list[ClaimPublic]:
    """Claims waiting for manual review, oldest first, with their audit hits (a payer's staff
    see their payer's; auditors and the authority every payer's)."""
    return _publics(reads.in_review(_own_payer(staff, payer) or None))


@router.post("/review/{claim_id}", response_model=ClaimPublic)
def review(
    flow: ReviewDep,
    reads: ClaimReadsDep,
    reviewer: ReviewerDep,
    claim_id: str,
    decision: ReviewDecision,
) -> ClaimPublic:
    """Approve (then settled with the next batch) or reject with a reason (the payer's lock on
    chain is released, the citizen's yearly totals given back). One decision wins: any other
    is 409 ``already_decided`` naming the decision, who made it and when."""
    if not decision.approve and not decision.reason:
        raise Invalid("reason_required", "a rejection needs a reason")
    claim = reads.one(claim_id)
    if claim is None or not reviewer.sees_payer(claim.payer):
        raise NotFound("claim_not_found", f"no claim {claim_id}")  # others' are unknown
    flow.decide(claim_id, decision.approve, reviewer.actor, decision.reason)
    row = reads.one(claim_id)
    assert row is not None
    return _public(reads.views([row], history=True)[0])


@router.get("/review/claims", response_model=list[ClaimPublic])
def search_claims(
    reads: ClaimReadsDep,
    staff: StaffDep,
    state: str | None = None,
    payer: str | None = None,
    invoice: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[ClaimPublic]:
    """Claim search for payers (their own claims) and auditors."""
    own = _own_payer(staff, payer) or None
    return _publics(reads.search(state, own, invoice, limit))


class OfficeClaimBody(ClaimBody):
    """A claim entered at a payer's office counter for a citizen who shows their ID card."""

    id_number: str = Field(pattern=r"^[0-9]{17}[0-9Xx]$")


@router.post("/office/claims", response_model=ClaimPublic, status_code=201)
def office_claim(
    flow: ClaimDep,
    reads: ClaimReadsDep,
    citizens: CitizensDep,
    reviewer: ReviewerDep,
    body: OfficeClaimBody,
) -> ClaimPublic:
    """The counter channel (窗口): staff enter the claim for the citizen. The same rules hold:
    the invoice must be the citizen's, and one claim per invoice and payer whatever the
    channel."""
    _own_payer(reviewer, body.payer)
    (citizen,) = citizens.by_id_numbers([body.id_number])
    if citizen is None:
        raise NotFound("citizen_not_found", "no enrolled citizen with this ID number")
    source = body.invoice if body.invoice is not None else body.qr_text
    assert source is not None
    return _submit(flow, reads, citizen, source, body.payer, "office")


class OfficeBatch(BaseModel):
    """Claims entered together at a counter or imported from a payer's paper intake: each an
    :class:`OfficeClaimBody`, checked one by one (a malformed claim is refused alone)."""

    claims: list[Any] = Field(min_length=1, max_length=1000)


class BatchOutcome(BaseModel):
    """One claim of a batch: ``status`` 201 with the claim, or the refusal's status and
    error, as :func:`office_claim` would answer it alone."""

    index: int
    status: int
    claim_id: str | None = None
    state: str | None = None
    reason_code: str | None = None
    amount_fen: int | None = None
    error: dict[str, Any] | None = None


def _office_claim(index: int, raw: Any) -> OfficeClaimBody | BatchOutcome:
    """One claim of a batch, or its refusal naming each malformed field (never its value: an
    ID number is personal data)."""
    try:
        return OfficeClaimBody.model_validate(raw)
    except ValidationError as exc:
        problems = [
            {"path": ".".join(str(p) for p in e["loc"]) or "$", "reason": e["msg"]}
            for e in exc.errors(include_input=False, include_url=False)
        ]
        error = {
            "code": "invalid_request",
            "message": "the claim is malformed",
            "problems": problems,
        }
        return BatchOutcome(index=index, status=422, error=error)


def _submit_each(flow: ClaimFlow, requests: list[ClaimRequest]) -> list[models.Claim | ApiError]:
    """The claims of a batch taken one at a time, after the batch failed as a whole: each
    gets its own answer, and a claim that cannot be processed does not take the others with
    it (a failure of the ledger is the request's answer, as for one claim)."""
    outcomes: list[models.Claim | ApiError] = []
    for r in requests:
        try:
            outcomes.append(flow.submit(r.citizen, r.source, r.payer, r.channel))
        except Refused as exc:
            outcomes.append(as_api_error(exc))
        except LedgerError:
            raise
        except Exception:
            log.exception("an office claim could not be processed")
            outcomes.append(
                ApiError(
                    500, "claim_failed", "this claim could not be processed and was not stored"
                )
            )
    return outcomes


@router.post("/office/claims/batch", response_model=list[BatchOutcome])
def office_claims_batch(
    flow: ClaimDep, citizens: CitizensDep, reviewer: ReviewerDep, body: OfficeBatch
) -> list[BatchOutcome]:
    """Up to 1,000 counter claims at once, each checked exactly as one by one and in order
    (a later claim of the same invoice and payer is a duplicate of the earlier), stored in
    one transaction. One outcome per claim, in the order sent: a malformed claim, or one that
    cannot be processed, is answered alone and the others are still taken."""
    outcomes: list[BatchOutcome | None] = [None] * len(body.claims)
    parsed: list[tuple[int, OfficeClaimBody]] = []
    for i, raw in enumerate(body.claims):
        item = _office_claim(i, raw)
        if isinstance(item, BatchOutcome):
            outcomes[i] = item
        else:
            parsed.append((i, item))
    for _, item in parsed:
        _own_payer(reviewer, item.payer)
    found = citizens.by_id_numbers([c.id_number for _, c in parsed])
    requests: list[tuple[int, ClaimRequest]] = []
    for (i, item), citizen in zip(parsed, found, strict=True):
        if citizen is None:
            error = {
                "code": "citizen_not_found",
                "message": "no enrolled citizen with this ID number",
            }
            outcomes[i] = BatchOutcome(index=i, status=404, error=error)
            continue
        source = item.invoice if item.invoice is not None else item.qr_text
        assert source is not None
        requests.append((i, ClaimRequest(citizen, source, item.payer, "office")))
    results: list[models.Claim | ApiError]
    try:
        results = [
            as_api_error(r) if isinstance(r, Refused) else r
            for r in flow.submit_many([r for _, r in requests])
        ]
    except LedgerError:
        raise
    except Exception:
        # One claim that cannot be processed (an invoice stored unreadable, say) fails the
        # batch's single transaction: nothing was stored; take the claims one at a time.
        log.exception("an office batch failed as a whole; taking its claims one at a time")
        results = _submit_each(flow, [r for _, r in requests])
    for (i, _), result in zip(requests, results, strict=True):
        if isinstance(result, ApiError):
            error = {"code": result.code, "message": result.message, **result.details}
            outcomes[i] = BatchOutcome(index=i, status=result.status, error=error)
        else:
            outcomes[i] = BatchOutcome(
                index=i,
                status=201,
                claim_id=result.id,
                state=result.state,
                reason_code=result.reason_code,
                amount_fen=result.amount_fen,
            )
    return [o for o in outcomes if o is not None]


@router.get("/audit/reconciliation")
def reconciliation(reconciler: ReconciliationDep, auditor: AuditorDep) -> dict[str, Any]:
    """The database recomputed against the chain: every checkpoint root, every payment."""
    return reconciler.reconcile().as_json()


@router.get("/audit/stats")
def stats(reads: ClaimReadsDep, auditor: AuditorDep) -> dict[str, Any]:
    """Figures for the auditor's charts: invoices and claims per day, amounts, the approval
    rate, the time from claim to payment, and the audit hits by rule."""
    return reads.statistics()
