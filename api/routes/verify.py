"""Verification of an invoice by anyone: QR text, a photo of the QR code, or the bill code and
number typed in. Rate-limited per client; failed attempts limited per client and per bill."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Request
from pydantic import BaseModel, Field, model_validator

from api.deps import (
    ImageLimitsDep,
    StaffTokensDep,
    VerificationDep,
    VerifyLimiterDep,
    bearer_token,
)
from api.errors import ApiError, too_many_requests
from api.flows.verify import VerifyFlow, refuse_oversized_photo
from verifier.pipeline import Reference, Verdict

router = APIRouter(prefix="/verify", tags=["verify"])


class VerifyRequest(BaseModel):
    """Either ``qr_text``, or ``bill_code``, ``bill_number`` and ``check_code`` (and the amount
    and date when printed)."""

    qr_text: str | None = Field(None, max_length=4096)
    bill_code: str | None = Field(None, pattern=r"^[0-9]{8}$")
    bill_number: str | None = Field(None, pattern=r"^[0-9]{10}$")
    check_code: str | None = Field(None, pattern=r"^[0-9A-Za-z]{6}$")
    amount_fen: int | None = Field(None, ge=0)
    issued_on: date | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> VerifyRequest:
        typed = (self.bill_code, self.bill_number, self.check_code)
        if (self.qr_text is None) == (None in typed):
            # As on the fiscal verification platforms: code and number are sequential and
            # guessable, the check code shows the bill was seen.
            raise ValueError("send either qr_text, or bill_code, bill_number and check_code")
        return self


class VerdictPublic(BaseModel):
    valid: bool
    failed_step: str | None
    invoice_id: str | None
    reference: str | None
    verification_count: int | None
    milliseconds: float
    steps: list[dict[str, Any]]


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _limit(limiter: VerifyLimiterDep, request: Request) -> None:
    wait = limiter.allow(_client(request))
    if wait > 0:
        raise too_many_requests(
            "rate_limited", f"too many verifications: retry in {wait:.0f} s", wait
        )


def _is_staff(staff_tokens: StaffTokensDep, authorization: str | None) -> bool:
    """Whether a staff token came with the verification (staff's are not counted). Anyone may
    verify: a missing or unknown token is an anonymous verification, not an error."""
    try:
        token = bearer_token(authorization)
    except ApiError:  # not a bearer token (a bare one included): anonymous
        return False
    return token is not None and staff_tokens.staff_for(token) is not None


def _verified(
    verification: VerifyFlow, source: bytes | str | Reference, client: str, staff: bool
) -> VerdictPublic:
    return _public(*verification.verify(source, asker=client, staff=staff))


def _public(verdict: Verdict, count: int | None) -> VerdictPublic:
    body = verdict.as_json()
    return VerdictPublic(
        valid=body["valid"],
        failed_step=body["failed_step"],
        invoice_id=body["invoice_id"],
        reference=body["reference"],
        verification_count=count,
        milliseconds=body["milliseconds"],
        steps=body["steps"],
    )


@router.post("", response_model=VerdictPublic)
def verify_text(
    verification: VerificationDep,
    limiter: VerifyLimiterDep,
    staff_tokens: StaffTokensDep,
    request: Request,
    body: Annotated[VerifyRequest, Body()],
    authorization: Annotated[str | None, Header()] = None,
) -> VerdictPublic:
    """Verifies a QR text (ours or a fiscal e-bill pointer) or a typed bill code and number.

    The verdict lists every step (decode, parse, canonicalise, signature, registry, inclusion,
    record, status) with a stable code and a sentence in Chinese and English, and stops at the
    first failure. An invalid invoice is a 200 with ``valid: false``, not an error; a wrong
    check code is answered exactly as an unknown bill. Failed attempts are limited per client
    and per bill (429 ``rate_limited``, ``bill_rate_limited``)."""
    _limit(limiter, request)
    source: str | Reference
    if body.qr_text is not None:
        source = body.qr_text
    else:
        assert body.bill_code is not None and body.bill_number is not None
        source = Reference(
            body.bill_code, body.bill_number, body.check_code, body.amount_fen, body.issued_on
        )
    staff = _is_staff(staff_tokens, authorization)
    return _verified(verification, source, _client(request), staff)


@router.post(
    "/image",
    response_model=VerdictPublic,
    openapi_extra={
        "requestBody": {"content": {"image/png": {}, "image/jpeg": {}}, "required": True}
    },
)
async def verify_image(
    verification: VerificationDep,
    limiter: VerifyLimiterDep,
    staff_tokens: StaffTokensDep,
    image_limits: ImageLimitsDep,
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
) -> VerdictPublic:
    """Verifies a photo of the QR code: send the PNG or JPEG bytes as the request body."""
    _limit(limiter, request)
    data = await request.body()
    if not data:
        raise ApiError(422, "image_missing", "send the photo's bytes as the request body")
    from starlette.concurrency import run_in_threadpool

    refuse_oversized_photo(data, image_limits)  # 413 from the header
    staff = await run_in_threadpool(_is_staff, staff_tokens, authorization)
    return await run_in_threadpool(_verified, verification, data, _client(request), staff)
