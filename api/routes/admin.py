"""The authority's administration: onboarding hospitals (bearer token of the authority)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, Field, field_validator
from sqlalchemy.exc import IntegrityError

from api.deps import AdminDep, ServicesDep
from api.errors import ApiError
from api.hospitals import register_hospital
from api.staff import issue_token, log_change, revoke_token
from chain.model import HospitalLevel

router = APIRouter(prefix="/admin", tags=["admin"])


class HospitalRegistration(BaseModel):
    code: str = Field(pattern=r"^[0-9A-Za-z]{1,32}$")
    name: str = Field(min_length=1, max_length=200)
    level: Literal["township", "primary", "secondary", "tertiary"]
    signer: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$")
    valid_from: AwareDatetime = Field(description="from when the key signs; 1970 or later")

    @field_validator("valid_from")
    @classmethod
    def _ledger_time(cls, value: datetime) -> datetime:
        if value < datetime(1970, 1, 1, tzinfo=UTC):
            raise ValueError("must be 1970-01-01 or later (the ledger counts unsigned seconds)")
        return value


class HospitalRegistered(BaseModel):
    hospital: str
    api_key: str


@router.post("/hospitals", status_code=201, response_model=HospitalRegistered)
def register(
    services: ServicesDep, admin: AdminDep, body: HospitalRegistration
) -> HospitalRegistered:
    """Registers a hospital's signing key on chain and issues its upload API key (shown once)."""
    from eth_utils.address import to_checksum_address

    api_key = register_hospital(
        services,
        body.code,
        body.name,
        HospitalLevel[body.level.upper()],
        to_checksum_address(body.signer),
        body.valid_from,
    )
    log_change(
        services,
        admin.actor,
        "hospital_registered",
        body.code,
        level=body.level,
        signer=to_checksum_address(body.signer),
        valid_from=body.valid_from.isoformat(),
    )
    return HospitalRegistered(hospital=body.code, api_key=api_key)


class StaffRequest(BaseModel):
    name: str = Field(pattern=r"^[0-9A-Za-z._-]{1,64}$", description="who: unique")
    role: Literal["payer", "auditor"]
    payer: str | None = Field(None, pattern=r"^[a-z0-9_-]{1,32}$", description="role payer")


class StaffIssued(BaseModel):
    name: str
    role: str
    payer: str | None
    token: str


@router.post("/staff", status_code=201, response_model=StaffIssued)
def issue_staff_token(services: ServicesDep, admin: AdminDep, body: StaffRequest) -> StaffIssued:
    """Issues a bearer token (shown once) for a payer's staff (that payer's review queue,
    decisions, counter claims and search) or for an auditor (read-only, every payer)."""
    try:
        token = issue_token(services, body.name, body.role, body.payer)
    except ValueError as exc:
        raise ApiError(422, "staff_invalid", str(exc)) from None
    except IntegrityError:
        raise ApiError(409, "staff_exists", f"a token named {body.name!r} exists") from None
    return StaffIssued(name=body.name, role=body.role, payer=body.payer, token=token)


@router.delete("/staff/{name}", status_code=204, response_class=Response)
def revoke_staff_token(services: ServicesDep, admin: AdminDep, name: str) -> Response:
    """Revokes a staff token at once (a reviewer who left, a token that leaked)."""
    if not revoke_token(services, name, admin.actor):
        raise ApiError(404, "staff_not_found", f"no live staff token named {name!r}")
    return Response(status_code=204)
