"""The authority's administration (bearer token of the authority): onboarding hospitals, their
signing keys (rotate, revoke) and upload API keys (rotate, revoke), staff tokens."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, Field, field_validator

from api.deps import AdminDep, HospitalsDep, StaffTokensDep
from chain.model import HospitalKey, HospitalLevel

router = APIRouter(prefix="/admin", tags=["admin"])


def _ledger_time(value: datetime) -> datetime:
    if value < datetime(1970, 1, 1, tzinfo=UTC):
        raise ValueError("must be 1970-01-01 or later (the ledger counts unsigned seconds)")
    return value


class HospitalRegistration(BaseModel):
    code: str = Field(pattern=r"^[0-9A-Za-z]{1,32}$")
    name: str = Field(min_length=1, max_length=200)
    level: Literal["township", "primary", "secondary", "tertiary"]
    signer: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$")
    valid_from: AwareDatetime = Field(description="from when the key signs; 1970 or later")

    _valid_from = field_validator("valid_from")(_ledger_time)


class HospitalRegistered(BaseModel):
    hospital: str
    api_key: str


@router.post("/hospitals", status_code=201, response_model=HospitalRegistered)
def register(
    hospitals: HospitalsDep, admin: AdminDep, body: HospitalRegistration
) -> HospitalRegistered:
    """Registers a hospital's signing key on chain and issues its upload API key (shown once)."""
    from eth_utils.address import to_checksum_address

    api_key = hospitals.register(
        body.code,
        body.name,
        HospitalLevel[body.level.upper()],
        to_checksum_address(body.signer),
        body.valid_from,
        actor=admin.actor,
    )
    return HospitalRegistered(hospital=body.code, api_key=api_key)


HospitalCode = Annotated[str, Path(pattern=r"^[0-9A-Za-z]{1,32}$")]


class KeyRotation(BaseModel):
    signer: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$", description="the new signing key")
    valid_from: AwareDatetime = Field(
        description="from when the new key signs; the current key stops then; after the "
        "current key's valid_from"
    )

    _valid_from = field_validator("valid_from")(_ledger_time)


class KeyRevocation(BaseModel):
    revoked_at: AwareDatetime = Field(
        description="from when the key's signatures are invalid; may be in the past (a "
        "compromise), not before the key's valid_from"
    )

    _revoked_at = field_validator("revoked_at")(_ledger_time)


class SigningKeyPublic(BaseModel):
    hospital: str
    key_index: int
    signer: str
    valid_from: datetime
    revoked_at: datetime | None
    revoked_log_size: int | None = Field(
        description="the anchored log size recorded with a revocation: invoices of this key "
        "at that leaf index or beyond are refused whatever their issue time"
    )

    @classmethod
    def of(cls, hospital: str, key: HospitalKey) -> SigningKeyPublic:
        return cls(
            hospital=hospital,
            key_index=key.index,
            signer=key.signer,
            valid_from=key.valid_from,
            revoked_at=key.revoked_at,
            revoked_log_size=key.revoked_log_size,
        )


@router.post("/hospitals/{code}/keys", status_code=201, response_model=SigningKeyPublic)
def rotate_hospital_key(
    hospitals: HospitalsDep, admin: AdminDep, code: HospitalCode, body: KeyRotation
) -> SigningKeyPublic:
    """Rotates a hospital's signing key on chain: the new key signs from ``valid_from``, the
    current one stops then (not a compromise: what it signed before stays valid)."""
    from eth_utils.address import to_checksum_address

    change = hospitals.rotate_signing_key(
        code, to_checksum_address(body.signer), body.valid_from, admin.actor
    )
    return SigningKeyPublic.of(change.hospital, change.key)


@router.post("/hospitals/{code}/keys/{key_index}/revocation", response_model=SigningKeyPublic)
def revoke_hospital_key(
    hospitals: HospitalsDep,
    admin: AdminDep,
    code: HospitalCode,
    key_index: Annotated[int, Path(ge=0, lt=2**32)],
    body: KeyRevocation,
) -> SigningKeyPublic:
    """Revokes a hospital's signing key (a stolen key: backdate ``revoked_at`` to the
    compromise). From now on nothing it signs is accepted, verified or paid, whatever the issue
    time written in it; invoices anchored before stay valid if issued before ``revoked_at``."""
    change = hospitals.revoke_signing_key(code, key_index, body.revoked_at, admin.actor)
    return SigningKeyPublic.of(change.hospital, change.key)


class ApiKeyIssued(BaseModel):
    hospital: str
    api_key: str


@router.post("/hospitals/{code}/api-key", status_code=201, response_model=ApiKeyIssued)
def rotate_hospital_api_key(
    hospitals: HospitalsDep, admin: AdminDep, code: HospitalCode
) -> ApiKeyIssued:
    """Issues a new upload API key (shown once); the old one stops working at once."""
    api_key = hospitals.rotate_api_key(code, admin.actor)
    return ApiKeyIssued(hospital=code, api_key=api_key)


@router.delete("/hospitals/{code}/api-key", status_code=204, response_class=Response)
def revoke_hospital_api_key(
    hospitals: HospitalsDep, admin: AdminDep, code: HospitalCode
) -> Response:
    """Revokes the hospital's upload API key at once (404 when it has none)."""
    hospitals.revoke_api_key(code, admin.actor)
    return Response(status_code=204)


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
def issue_staff_token(
    staff_tokens: StaffTokensDep, admin: AdminDep, body: StaffRequest
) -> StaffIssued:
    """Issues a bearer token (shown once) for a payer's staff (that payer's review queue,
    decisions, counter claims and search) or for an auditor (read-only, every payer)."""
    token = staff_tokens.issue(body.name, body.role, body.payer)
    return StaffIssued(name=body.name, role=body.role, payer=body.payer, token=token)


@router.delete("/staff/{name}", status_code=204, response_class=Response)
def revoke_staff_token(staff_tokens: StaffTokensDep, admin: AdminDep, name: str) -> Response:
    """Revokes a staff token at once (a reviewer who left, a token that leaked)."""
    staff_tokens.revoke(name, admin.actor)
    return Response(status_code=204)
