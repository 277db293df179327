"""Dependency aliases shared by the routes."""

from __future__ import annotations

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
