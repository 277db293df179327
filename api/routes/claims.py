"""Claims: one tap by a citizen, review by a payer's reviewer, history for everyone involved."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field, ValidationError, model_validator
from sqlalchemy import select

from api.bootstrap import Services
from api.db import models
from api.deps import ServicesDep, StaffDep, staff_with
from api.errors import ApiError, too_many_requests
from api.flows import claim as claims_flow
from api.flows.claim import ClaimRefused, readable
from api.flows.verify_failures import VerificationRefused
from api.identity.staff import Staff
from api.read.invoices import load_invoice
from api.routes.citizens import CitizenDep
from chain.errors import LedgerError

router = APIRouter(tags=["claims"])
log = logging.getLogger("zeroclaim.claims")


class ClaimRequest(BaseModel):
    """``invoice`` (an id or BILLCODE-BILLNUMBER: the app's one tap) or ``qr_text``."""

    invoice: str | None = Field(None, max_length=80)
    qr_text: str | None = Field(None, max_length=4096)
    payer: str = Field("basic", pattern=r"^[a-z0-9_-]{1,32}$")

    @model_validator(mode="after")
    def _one(self) -> ClaimRequest:
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


def _public(services: Services, claim: models.Claim, history: bool = False) -> ClaimPublic:
    with services.sessions() as db:
        invoice = db.get(models.Invoice, claim.invoice_id)
        assert invoice is not None  # claims refer to stored invoices
        lines = load_invoice(db, invoice)
        payment = db.get(models.Payment, claim.id)
        events = (
            list(
                db.scalars(
                    select(models.ClaimEvent)
                    .where(models.ClaimEvent.claim_id == claim.id)
                    .order_by(models.ClaimEvent.id)
                )
            )
            if history
            else []
        )
    return ClaimPublic(
        claim_id=claim.id,
        invoice_id="0x" + claim.invoice_id.hex(),
        reference=f"{invoice.bill_code}-{invoice.bill_number}",
        payer=claim.payer,
        channel=claim.channel,
        state=claim.state,
        reason_code=claim.reason_code,
        amount_fen=claim.amount_fen,
        adjudication=readable(claim.adjudication, lines),
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
        history=[
            {"at": e.at.isoformat(), "state": e.state, "actor": e.actor, "detail": e.detail}
            for e in events
        ],
    )


#: Refusals that are failed attempts: what was sent names no invoice of the citizen's.
FAILED_ATTEMPTS = ("invoice_not_found", "verification_failed")


def _submit(
    services: Services, citizen: models.Citizen, source: str | bytes, payer: str, channel: str
) -> ClaimPublic:
    """Submits the claim; a citizen's own failed attempts are limited (429 ``rate_limited``,
    decided before the attempt), staff's at the office are not."""
    failures = services.verification.failures
    asker = None if channel == "office" else f"citizen:{citizen.id}"
    try:
        if asker is not None:
            failures.admit(asker)
    except VerificationRefused as exc:
        raise too_many_requests(exc.code, str(exc), exc.retry_after) from None
    try:
        claim = services.claims.submit(citizen, source, payer, channel)
    except ClaimRefused as exc:
        if asker is not None and exc.code in FAILED_ATTEMPTS:
            failures.record(asker, None)
        raise ApiError(exc.status, exc.code, str(exc), **exc.details) from None
    return _public(services, claim)


@router.post("/claims", response_model=ClaimPublic, status_code=201)
def claim(services: ServicesDep, citizen: CitizenDep, body: ClaimRequest) -> ClaimPublic:
    """One-tap claim of an invoice (or of a QR text) from a payer. Refused: an invoice that
    does not verify, someone else's invoice and a wrong check code (both as if unknown), a
    second claim of the invoice from the same payer (409, with the first claim's reference);
    too many failed attempts of the citizen (429)."""
    source = body.invoice if body.invoice is not None else body.qr_text
    assert source is not None
    channel = "app" if body.invoice is not None else "qr_text"
    return _submit(services, citizen, source, body.payer, channel)


@router.post(
    "/claims/photo",
    response_model=ClaimPublic,
    status_code=201,
    openapi_extra={
        "requestBody": {"content": {"image/png": {}, "image/jpeg": {}}, "required": True}
    },
)
async def claim_by_photo(
    services: ServicesDep,
    citizen: CitizenDep,
    request: Request,
    payer: Annotated[str, Query(pattern=r"^[a-z0-9_-]{1,32}$")] = "basic",
) -> ClaimPublic:
    """A claim from a photo of the invoice's QR code (the image bytes as the body).

    Reading a photo is the costliest request: it is limited per citizen and, with the
    verifications, per client (429 ``rate_limited``), and a photo whose header claims too
    many pixels is refused with 413 before it is decoded."""
    from starlette.concurrency import run_in_threadpool

    from api.flows.verify import refuse_oversized_photo

    client = request.client.host if request.client else "unknown"
    for limiter, key, what in (
        (services.photo_claim_limiter, str(citizen.id), "claims by photo"),
        (services.rate_limiter, client, "verifications"),
    ):
        wait = limiter.allow(key)
        if wait > 0:
            raise too_many_requests("rate_limited", f"too many {what}: retry in {wait:.0f} s", wait)
    data = await request.body()
    if not data:
        raise ApiError(422, "image_missing", "send the photo's bytes as the request body")
    refuse_oversized_photo(data, services.settings.image_limits())
    return await run_in_threadpool(_submit, services, citizen, data, payer, "qr_photo")


@router.get("/claims/mine", response_model=list[ClaimPublic])
def my_claims(services: ServicesDep, citizen: CitizenDep) -> list[ClaimPublic]:
    with services.sessions() as db:
        rows = list(
            db.scalars(
                select(models.Claim)
                .where(models.Claim.citizen_id == citizen.id)
                .order_by(models.Claim.created_at.desc())
            )
        )
    return [_public(services, c) for c in rows]


@router.get("/claims/{claim_id}", response_model=ClaimPublic)
def claim_detail(services: ServicesDep, citizen: CitizenDep, claim_id: str) -> ClaimPublic:
    """A claim with every check and state change (the citizen's own claims)."""
    with services.sessions() as db:
        row = db.get(models.Claim, claim_id)
    if row is None or row.citizen_id != citizen.id:
        raise ApiError(404, "claim_not_found", f"no claim {claim_id} of yours")
    return _public(services, row, history=True)


ReviewerDep = Annotated[Staff, Depends(staff_with("admin", "payer"))]
"""Who decides and enters claims: the authority, or a payer's staff (their payer's only)."""
AuditorDep = Annotated[Staff, Depends(staff_with("admin", "auditor"))]
"""Who reconciles and reads the statistics: the authority, or an auditor."""


def _own_payer(staff: Staff, payer: str | None) -> str | None:
    """The payer a search is limited to: a payer's staff see their own payer only."""
    if staff.role != "payer":
        return payer
    if payer is not None and payer != staff.payer:
        raise ApiError(403, "not_your_payer", f"you act for {staff.payer}", payer=staff.payer)
    return staff.payer


class ReviewDecision(BaseModel):
    approve: bool
    reason: str | None = Field(None, max_length=200)


@router.get("/review/queue", response_model=list[ClaimPublic])
def review_queue(
    services: ServicesDep, staff: StaffDep, payer: str | None = None
) -> list[ClaimPublic]:
    """Claims waiting for manual review, oldest first, with their audit hits (a payer's staff
    see their payer's; auditors and the authority every payer's)."""
    query = select(models.Claim).where(models.Claim.state == "in_review")
    if payer := _own_payer(staff, payer):
        query = query.where(models.Claim.payer == payer)
    with services.sessions() as db:
        rows = list(db.scalars(query.order_by(models.Claim.created_at)))
    return [_public(services, c) for c in rows]


@router.post("/review/{claim_id}", response_model=ClaimPublic)
def review(
    services: ServicesDep, reviewer: ReviewerDep, claim_id: str, decision: ReviewDecision
) -> ClaimPublic:
    """Approve (then settled with the next batch) or reject with a reason (the payer's lock on
    chain is released, the citizen's yearly totals given back). One decision wins: any other
    is 409 ``already_decided`` naming the decision, who made it and when."""
    if not decision.approve and not decision.reason:
        raise ApiError(422, "reason_required", "a rejection needs a reason")
    with services.sessions() as db:
        claim = db.get(models.Claim, claim_id)
    if claim is None or not reviewer.sees_payer(claim.payer):
        raise ApiError(404, "claim_not_found", f"no claim {claim_id}")  # others' are unknown
    try:
        services.claims.review(claim_id, decision.approve, reviewer.actor, decision.reason)
    except ClaimRefused as exc:
        raise ApiError(exc.status, exc.code, str(exc), **exc.details) from None
    with services.sessions() as db:
        row = db.get(models.Claim, claim_id)
    assert row is not None
    return _public(services, row, history=True)


@router.get("/review/claims", response_model=list[ClaimPublic])
def search_claims(
    services: ServicesDep,
    staff: StaffDep,
    state: str | None = None,
    payer: str | None = None,
    invoice: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[ClaimPublic]:
    """Claim search for payers (their own claims) and auditors."""
    query = select(models.Claim)
    if state:
        query = query.where(models.Claim.state == state)
    if payer := _own_payer(staff, payer):
        query = query.where(models.Claim.payer == payer)
    if invoice:
        from api.routes.invoices import find_invoice

        query = query.where(models.Claim.invoice_id == find_invoice(services, invoice).invoice_id)
    with services.sessions() as db:
        rows = list(db.scalars(query.order_by(models.Claim.created_at.desc()).limit(limit)))
    return [_public(services, c, history=True) for c in rows]


class OfficeClaimRequest(ClaimRequest):
    """A claim entered at a payer's office counter for a citizen who shows their ID card."""

    id_number: str = Field(pattern=r"^[0-9]{17}[0-9Xx]$")


@router.post("/office/claims", response_model=ClaimPublic, status_code=201)
def office_claim(
    services: ServicesDep, reviewer: ReviewerDep, body: OfficeClaimRequest
) -> ClaimPublic:
    """The counter channel (窗口): staff enter the claim for the citizen. The same rules hold:
    the invoice must be the citizen's, and one claim per invoice and payer whatever the
    channel."""
    _own_payer(reviewer, body.payer)
    id_hash = services.ingest.personal.id_number_hash(body.id_number)
    with services.sessions() as db:
        citizen = db.scalar(select(models.Citizen).where(models.Citizen.id_number_hash == id_hash))
    if citizen is None:
        raise ApiError(404, "citizen_not_found", "no enrolled citizen with this ID number")
    source = body.invoice if body.invoice is not None else body.qr_text
    assert source is not None
    return _submit(services, citizen, source, body.payer, "office")


class OfficeBatch(BaseModel):
    """Claims entered together at a counter or imported from a payer's paper intake: each an
    :class:`OfficeClaimRequest`, checked one by one (a malformed claim is refused alone)."""

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


def _office_claim(index: int, raw: Any) -> OfficeClaimRequest | BatchOutcome:
    """One claim of a batch, or its refusal naming each malformed field (never its value: an
    ID number is personal data)."""
    try:
        return OfficeClaimRequest.model_validate(raw)
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


def _submit_each(
    services: Services, requests: list[claims_flow.ClaimRequest]
) -> list[models.Claim | ClaimRefused]:
    """The claims of a batch taken one at a time, after the batch failed as a whole: each
    gets its own answer, and a claim that cannot be processed does not take the others with
    it (a failure of the ledger is the request's answer, as for one claim)."""
    outcomes: list[models.Claim | ClaimRefused] = []
    for r in requests:
        try:
            outcomes.append(services.claims.submit(r.citizen, r.source, r.payer, r.channel))
        except ClaimRefused as exc:
            outcomes.append(exc)
        except LedgerError:
            raise
        except Exception:
            log.exception("an office claim could not be processed")
            outcomes.append(
                ClaimRefused(
                    500, "claim_failed", "this claim could not be processed and was not stored"
                )
            )
    return outcomes


@router.post("/office/claims/batch", response_model=list[BatchOutcome])
def office_claims_batch(
    services: ServicesDep, reviewer: ReviewerDep, body: OfficeBatch
) -> list[BatchOutcome]:
    """Up to 1,000 counter claims at once, each checked exactly as one by one and in order
    (a later claim of the same invoice and payer is a duplicate of the earlier), stored in
    one transaction. One outcome per claim, in the order sent: a malformed claim, or one that
    cannot be processed, is answered alone and the others are still taken."""
    outcomes: list[BatchOutcome | None] = [None] * len(body.claims)
    parsed: list[tuple[int, OfficeClaimRequest]] = []
    for i, raw in enumerate(body.claims):
        item = _office_claim(i, raw)
        if isinstance(item, BatchOutcome):
            outcomes[i] = item
        else:
            parsed.append((i, item))
    for _, item in parsed:
        _own_payer(reviewer, item.payer)
    hashes = [services.ingest.personal.id_number_hash(c.id_number) for _, c in parsed]
    with services.sessions() as db:
        found = {
            c.id_number_hash: c
            for c in db.scalars(
                select(models.Citizen).where(models.Citizen.id_number_hash.in_(set(hashes)))
            )
        }
    requests: list[tuple[int, claims_flow.ClaimRequest]] = []
    for (i, item), id_hash in zip(parsed, hashes, strict=True):
        citizen = found.get(id_hash)
        if citizen is None:
            error = {
                "code": "citizen_not_found",
                "message": "no enrolled citizen with this ID number",
            }
            outcomes[i] = BatchOutcome(index=i, status=404, error=error)
            continue
        source = item.invoice if item.invoice is not None else item.qr_text
        assert source is not None
        requests.append((i, claims_flow.ClaimRequest(citizen, source, item.payer, "office")))
    try:
        results = services.claims.submit_many([r for _, r in requests])
    except LedgerError:
        raise
    except Exception:
        # One claim that cannot be processed (an invoice stored unreadable, say) fails the
        # batch's single transaction: nothing was stored; take the claims one at a time.
        log.exception("an office batch failed as a whole; taking its claims one at a time")
        results = _submit_each(services, [r for _, r in requests])
    for (i, _), result in zip(requests, results, strict=True):
        if isinstance(result, ClaimRefused):
            error = {"code": result.code, "message": str(result), **result.details}
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
def reconciliation(services: ServicesDep, auditor: AuditorDep) -> dict[str, Any]:
    """The database recomputed against the chain: every checkpoint root, every payment."""
    from api.read.reconciliation import reconcile

    return reconcile(services).as_json()


@router.get("/audit/stats")
def stats(services: ServicesDep, auditor: AuditorDep) -> dict[str, Any]:
    """Figures for the auditor's charts: invoices and claims per day, amounts, the approval
    rate, the time from claim to payment, and the audit hits by rule."""
    from collections import Counter, defaultdict

    from claims import CHINA_TZ

    with services.sessions() as db:
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
        paid_at = dict(db.execute(select(models.Payment.claim_id, models.Payment.paid_at)).all())
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
        if state in ("approved", "settling", "settled", "paid", "rejected"):
            decided_on[key][1] += 1
            decided_on[key][0] += state != "rejected"
        if claim_id in paid_at:
            seconds = (paid_at[claim_id] - created_at).total_seconds()
            seconds_to_pay.append(seconds)
            paid_seconds_on[key].append(seconds)
    for key, day in per_day.items():
        approved_n, decided_n = decided_on.get(key, [0, 0])
        day["approval_rate_permille"] = approved_n * 1000 // decided_n if decided_n else 0
        paid_list = paid_seconds_on.get(key, [])
        day["seconds_to_payment"] = round(sum(paid_list) / len(paid_list)) if paid_list else 0
    decided = states["paid"] + states["approved"] + states["settled"] + states["rejected"]
    approved = decided - states["rejected"]
    return {
        "per_day": [{"day": d, **v} for d, v in sorted(per_day.items())],
        "claims_by_state": dict(states),
        "approval_rate": round(approved / decided, 4) if decided else None,
        "seconds_to_payment_mean": round(sum(seconds_to_pay) / len(seconds_to_pay), 1)
        if seconds_to_pay
        else None,
        "audit_hits": dict(hits),
    }
