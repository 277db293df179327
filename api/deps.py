"""Dependency aliases shared by the routes."""

from __future__ import annotations

import hmac
from typing import Annotated, cast

from fastapi import Depends, Header, Request

from api.errors import ApiError
from api.services import Services


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


def require_token(services: Services, authorization: str | None, code: str, message: str) -> None:
    """Refuses a request whose ``Authorization: Bearer`` token is not the authority's admin
    token (compared in constant time), with the caller's error code."""
    expected = services.settings.admin_token.get_secret_value()
    given = (authorization or "").removeprefix("Bearer ").strip()
    if not given or not hmac.compare_digest(given, expected):
        raise ApiError(401, code, message)
