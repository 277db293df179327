"""Citizens: sign in, see the invoices issued to them."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from api.deps import CitizenDep, CitizensDep

router = APIRouter(prefix="/citizens", tags=["citizens"])


class SignInRequest(BaseModel):
    id_number: str = Field(pattern=r"^[0-9]{17}[0-9Xx]$")
    password: str = Field(min_length=1, max_length=200)


class SessionPublic(BaseModel):
    token: str
    expires_at: datetime
    name: str


@router.post("/session", response_model=SessionPublic)
def sign_in(citizens: CitizensDep, request: Request, body: SignInRequest) -> SessionPublic:
    """Signs a citizen in; the token goes in ``Authorization: Bearer …``. Rate-limited per
    client and per ID number (429 ``sign_in_rate_limited`` with ``Retry-After``)."""
    client = request.client.host if request.client else "unknown"
    session = citizens.sign_in(body.id_number, body.password, client)  # refusals propagate
    citizen = citizens.for_token(session.token)
    assert citizen is not None
    name = citizens.name_of(citizen)
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
def my_invoices(citizens: CitizensDep, citizen: CitizenDep) -> list[MyInvoice]:
    """The invoices issued to the signed-in citizen, newest first."""
    return [
        MyInvoice(
            invoice_id="0x" + mine.row.invoice_id.hex(),
            reference=f"{mine.row.bill_code}-{mine.row.bill_number}",
            hospital=mine.row.hospital,
            hospital_name=mine.hospital_name,
            issued_at=mine.row.issued_at,
            visit_type=mine.row.visit_type,
            department=mine.row.department,
            total=mine.row.total,
            status=mine.status,
        )
        for mine in citizens.invoices_of(citizen)
    ]
