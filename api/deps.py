"""Dependency aliases shared by the routes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, cast

from fastapi import Depends, Header, Request

from api.errors import ApiError
from api.services import Services
from api.staff import Role, Staff, staff_for_token


def get_services(request: Request) -> Services:
    return cast(Services, request.app.state.services)


ServicesDep = Annotated[Services, Depends(get_services)]


def authenticated_hospital(
    services: ServicesDep, x_api_key: Annotated[str | None, Header()] = None
) -> str:
    """The hospital whose API key is in the ``X-API-Key`` header."""
    from api.hospitals import hospital_for_api_key

    if not x_api_key:
        raise ApiError(401, "api_key_missing", "send the hospital's API key in X-API-Key")
    code = hospital_for_api_key(services, x_api_key)
    if code is None:
        raise ApiError(401, "api_key_invalid", "this API key belongs to no hospital")
    return code


HospitalDep = Annotated[str, Depends(authenticated_hospital)]


def staff_member(
    services: ServicesDep, authorization: Annotated[str | None, Header()] = None
) -> Staff:
    """The member of staff whose bearer token is in ``Authorization`` (401 otherwise)."""
    given = (authorization or "").removeprefix("Bearer ").strip()
    staff = staff_for_token(services, given) if given else None
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


StaffDep = Annotated[Staff, Depends(staff_member)]
AdminDep = Annotated[Staff, Depends(staff_with("admin"))]
