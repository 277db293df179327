"""Dependency aliases shared by the routes."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, cast

from fastapi import Depends, Header, Request

from api.bootstrap import Services
from api.db import models
from api.errors import ApiError
from api.flows.claim import ClaimFlow
from api.flows.review import ReviewFlow
from api.flows.upload import UploadFlow
from api.flows.verify import RateLimiter, VerifyFlow
from api.flows.void import VoidFlow
from api.identity.citizens import Citizens
from api.identity.hospitals import Hospitals
from api.identity.staff import AuditLog, Role, Staff, StaffTokens
from api.read.claims import ClaimReads
from api.read.health import HealthRead
from api.read.invoices import InvoiceReads
from api.read.ledger import LedgerReads
from api.read.qr import QrReads
from api.read.reconciliation import Reconciler
from api.read.trust import TrustListRead
from verifier.decode import ImageLimits


def get_services(request: Request) -> Services:
    return cast(Services, request.app.state.services)


ServicesDep = Annotated[Services, Depends(get_services)]


# -- the invoice side's flows and reads, as the routes get them ------------------------------


def _ingest(services: ServicesDep) -> UploadFlow:
    return services.ingest


def _void(services: ServicesDep) -> VoidFlow:
    return services.void


def _verification(services: ServicesDep) -> VerifyFlow:
    return services.verification


def _invoices(services: ServicesDep) -> InvoiceReads:
    return services.invoices


def _qr(services: ServicesDep) -> QrReads:
    return services.qr


def _trust_list(services: ServicesDep) -> TrustListRead:
    return services.trust_list


def _health(services: ServicesDep) -> HealthRead:
    return services.health


def _ledger_reads(services: ServicesDep) -> LedgerReads:
    return services.ledger_reads


def _hospitals(services: ServicesDep) -> Hospitals:
    return services.hospitals


def _staff_tokens(services: ServicesDep) -> StaffTokens:
    return services.staff_tokens


def _audit(services: ServicesDep) -> AuditLog:
    return services.audit


def _verify_limiter(services: ServicesDep) -> RateLimiter:
    return services.rate_limiter


def _image_limits(services: ServicesDep) -> ImageLimits:
    return services.settings.image_limits()


IngestDep = Annotated[UploadFlow, Depends(_ingest)]
VoidDep = Annotated[VoidFlow, Depends(_void)]
VerificationDep = Annotated[VerifyFlow, Depends(_verification)]
InvoicesDep = Annotated[InvoiceReads, Depends(_invoices)]
QrDep = Annotated[QrReads, Depends(_qr)]
TrustListDep = Annotated[TrustListRead, Depends(_trust_list)]
HealthDep = Annotated[HealthRead, Depends(_health)]
LedgerReadsDep = Annotated[LedgerReads, Depends(_ledger_reads)]
HospitalsDep = Annotated[Hospitals, Depends(_hospitals)]
StaffTokensDep = Annotated[StaffTokens, Depends(_staff_tokens)]
AuditDep = Annotated[AuditLog, Depends(_audit)]
VerifyLimiterDep = Annotated[RateLimiter, Depends(_verify_limiter)]
ImageLimitsDep = Annotated[ImageLimits, Depends(_image_limits)]

# -- the claim side's flows and reads, as the routes get them --------------------------------


def _claim(services: ServicesDep) -> ClaimFlow:
    return services.claim


def _review(services: ServicesDep) -> ReviewFlow:
    return services.review


def _claim_reads(services: ServicesDep) -> ClaimReads:
    return services.claim_reads


def _citizens(services: ServicesDep) -> Citizens:
    return services.citizens


def _photo_claim_limiter(services: ServicesDep) -> RateLimiter:
    return services.photo_claim_limiter


def _reconciliation(services: ServicesDep) -> Reconciler:
    return services.reconciliation


ClaimDep = Annotated[ClaimFlow, Depends(_claim)]
ReviewDep = Annotated[ReviewFlow, Depends(_review)]
ClaimReadsDep = Annotated[ClaimReads, Depends(_claim_reads)]
CitizensDep = Annotated[Citizens, Depends(_citizens)]
PhotoClaimLimiterDep = Annotated[RateLimiter, Depends(_photo_claim_limiter)]
ReconciliationDep = Annotated[Reconciler, Depends(_reconciliation)]


def authenticated_hospital(
    services: ServicesDep, x_api_key: Annotated[str | None, Header()] = None
) -> str:
    """The hospital whose API key is in the ``X-API-Key`` header."""
    if not x_api_key:
        raise ApiError(401, "api_key_missing", "send the hospital's API key in X-API-Key")
    code = services.hospitals.for_api_key(x_api_key)
    if code is None:
        raise ApiError(401, "api_key_invalid", "this API key belongs to no hospital")
    return code


HospitalDep = Annotated[str, Depends(authenticated_hospital)]

# RFC 6750 section 2.1: the scheme (case-insensitive, RFC 7235), one space, a token68.
_BEARER = re.compile(r"bearer ([A-Za-z0-9._~+/-]+=*)", re.IGNORECASE)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, None without the header.

    Anything else (a bare token, another scheme, two spaces) is refused with 401
    ``authorization_not_bearer`` rather than read as a token."""
    if authorization is None:
        return None
    match = _BEARER.fullmatch(authorization)
    if match is None:
        raise ApiError(
            401, "authorization_not_bearer", "send the token as Authorization: Bearer <token>"
        )
    return match.group(1)


def staff_member(
    services: ServicesDep, authorization: Annotated[str | None, Header()] = None
) -> Staff:
    """The member of staff whose bearer token is in ``Authorization`` (401 otherwise)."""
    given = bearer_token(authorization)
    staff = services.staff_tokens.staff_for(given) if given else None
    if staff is None:
        raise ApiError(
            401, "staff_token_invalid", "this needs a staff token (payer, auditor, admin)"
        )
    return staff


def staff_with(*roles: Role) -> Callable[[Staff], Staff]:
    """A dependency admitting only these roles (403 for other staff)."""

    def admitted(staff: Annotated[Staff, Depends(staff_member)]) -> Staff:
        if staff.role not in roles:
            raise ApiError(
                403, "role_not_allowed", f"this needs one of: {', '.join(roles)}", role=staff.role
            )
        return staff

    return admitted


def current_citizen(
    services: ServicesDep, authorization: Annotated[str | None, Header()] = None
) -> models.Citizen:
    """The signed-in citizen whose bearer token is in ``Authorization`` (401 otherwise)."""
    token = bearer_token(authorization)
    citizen = services.citizens.for_token(token) if token else None
    if citizen is None:
        raise ApiError(401, "not_signed_in", "sign in first (POST /api/v1/citizens/session)")
    return citizen


CitizenDep = Annotated[models.Citizen, Depends(current_citizen)]

StaffDep = Annotated[Staff, Depends(staff_member)]
AdminDep = Annotated[Staff, Depends(staff_with("admin"))]
ReviewerDep = Annotated[Staff, Depends(staff_with("admin", "payer"))]
"""Who decides and enters claims: the authority, or a payer's staff (their payer's only)."""
AuditorDep = Annotated[Staff, Depends(staff_with("admin", "auditor"))]
"""Who reconciles and reads the statistics: the authority, or an auditor."""


@dataclass(frozen=True)
class Reader:
    """Who asks to read an invoice: its issuing hospital (``X-API-Key``), staff, or a citizen
    (a bearer token, of staff or of a citizen's session)."""

    hospital: str | None = None
    staff: Staff | None = None
    citizen_hash: bytes | None = None

    def may_read(self, invoice: models.Invoice) -> bool:
        return (
            self.staff is not None
            or (self.hospital is not None and self.hospital == invoice.hospital)
            or (self.citizen_hash is not None and self.citizen_hash == invoice.patient_id_hash)
        )


def invoice_reader(
    services: ServicesDep,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Reader:
    """Whoever the headers name (401 when they name nobody): invoices are read by their
    hospital, staff and their patient; to anyone else they do not exist (404)."""
    hospital = services.hospitals.for_api_key(x_api_key) if x_api_key else None
    token = bearer_token(authorization)
    staff = services.staff_tokens.staff_for(token) if token else None
    citizen = services.citizens.for_token(token) if token and staff is None else None
    if hospital is None and staff is None and citizen is None:
        raise ApiError(401, "not_authenticated", "send a hospital's X-API-Key or a bearer token")
    return Reader(hospital, staff, citizen.id_number_hash if citizen else None)


ReaderDep = Annotated[Reader, Depends(invoice_reader)]
