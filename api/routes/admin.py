"""The authority's administration: onboarding hospitals (bearer token of the authority)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header
from pydantic import AwareDatetime, BaseModel, Field, field_validator

from api.deps import ServicesDep, require_token
from api.errors import ApiError
from api.hospitals import register_hospital
from chain.model import HospitalLevel

router = APIRouter(prefix="/admin", tags=["admin"])


def require_admin(
    services: ServicesDep, authorization: Annotated[str | None, Header()] = None
) -> None:
    require_token(
        services, authorization, "admin_token_invalid", "this needs the authority's admin token"
    )


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


@router.post(
    "/hospitals",
    status_code=201,
    response_model=HospitalRegistered,
    dependencies=[Depends(require_admin)],
)
def register(services: ServicesDep, body: HospitalRegistration) -> HospitalRegistered:
    """Registers a hospital's signing key on chain and issues its upload API key (shown once)."""
    if body.valid_from.tzinfo is None:
        raise ApiError(422, "naive_time", "valid_from must carry a timezone")
    from eth_utils.address import to_checksum_address

    api_key = register_hospital(
        services,
        body.code,
        body.name,
        HospitalLevel[body.level.upper()],
        to_checksum_address(body.signer),
        body.valid_from,
    )
    return HospitalRegistered(hospital=body.code, api_key=api_key)
