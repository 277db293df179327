"""The signed trust list: every hospital's keys with their validity, for offline verifiers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import TrustListDep

router = APIRouter(prefix="/trust-list", tags=["verify"])


@router.get("")
def trust_list(trust: TrustListDep) -> dict[str, Any]:
    """The signed trust list (docs/trust-list.md). Check it against the authority's address,
    which you must know from elsewhere: ``GET /health`` does not make it trustworthy."""
    return trust.export()
