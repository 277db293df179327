"""Citizens: sign in, see the invoices issued to them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from api.db import models
from api.deps import ServicesDep, bearer_token
from api.errors import ApiError, too_many_requests
from api.identity import citizens

router = APIRouter(prefix="/citizens", tags=["citizens"])


class SignInRequest(BaseModel):
    id_number: str = Field(pattern=r"^[0-9]{17}[0-9Xx]$")
    password: str = Field(min_length=1, max_length=200)


class SessionPublic(BaseModel):
    token: str
    expires_at: datetime
    name: str


def current_citizen(
    services: ServicesDep, authorization: Annotated[str | None, Header()] = None
) -> models.Citizen:
    token = bearer_token(authorization)
    citizen = citizens.citizen_for_token(services, token) if token else None
    if citizen is None:
        raise ApiError(401, "not_signed_in", "sign in first (POST /api/v1/citizens/session)")
    return citizen


CitizenDep = Annotated[models.Citizen, Depends(current_citizen)]


@router.post("/session", response_model=SessionPublic)
def sign_in(services: ServicesDep, request: Request, body: SignInRequest) -> SessionPublic:
    """Signs a citizen in; the token goes in ``Authorization: Bearer …``. Rate-limited per
    client and per ID number (429 ``sign_in_rate_limited`` with ``Retry-After``)."""
    client = request.client.host if request.client else "unknown"
    try:
        session = citizens.sign_in(services, body.id_number, body.password, client)
    except citizens.SignInThrottled as exc:
        raise too_many_requests("sign_in_rate_limited", str(exc), exc.wait) from None
    except citizens.SignInRefused as exc:
        raise ApiError(401, "sign_in_refused", str(exc)) from None
    citizen = citizens.citizen_for_token(services, session.token)
    assert citizen is not None
    name = services.ingest.personal.decrypt_text(citizen.name_enc, "citizen_name")
    return SessionPublic(token=session.token, expires_at=session.expires_at, name=name)


class MyInvoice(BaseModel):
    invoice_id: str
    reference: str
    hospital: str
    hospital_name: str
    issued_at: datetime
    visit_type: str
    department: str
    total: int
    status: Literal["pending", "anchored", "voided"]


@router.get("/me/invoices", response_model=list[MyInvoice])
def my_invoices(services: ServicesDep, citizen: CitizenDep) -> list[MyInvoice]:
    """The invoices issued to the signed-in citizen, newest first."""
    rows = citizens.my_invoices(services, citizen)
    with services.sessions() as db:
        names = dict(db.execute(select(models.Hospital.code, models.Hospital.name)).all())
    return [
        MyInvoice(
            invoice_id="0x" + r.invoice_id.hex(),
            reference=f"{r.bill_code}-{r.bill_number}",
            hospital=r.hospital,
            hospital_name=names.get(r.hospital, r.hospital),
            issued_at=r.issued_at,
            visit_type=r.visit_type,
            department=r.department,
            total=r.total,
            status="voided" if r.voided_by else "anchored" if r.checkpoint_size else "pending",
        )
        for r in rows
    ]
