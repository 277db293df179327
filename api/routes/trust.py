"""The signed trust list: every hospital's keys with their validity, for offline verifiers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter
from sqlalchemy import select

from api.bootstrap import Services
from api.db import models
from api.deps import ServicesDep
from chain.model import HospitalKey
from verifier.trust_list import TrustedHospital, build_trust_list, sign_trust_list

router = APIRouter(prefix="/trust-list", tags=["verify"])
VALIDITY = timedelta(days=7)


def export_trust_list(services: Services, now: datetime | None = None) -> dict[str, Any]:
    """The current registry as a trust list signed by the authority. ``sequence`` is the block
    number it was read at, so a newer list always has a higher sequence."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    services.registry.refresh()
    with services.sessions() as db:
        names = dict(db.execute(select(models.Hospital.code, models.Hospital.name)).all())
    with services.lock:
        block = services.session.backend.block_number()
    hospitals = []
    for code in sorted(services.registry.codes()):
        cached = services.registry.hospital(code)
        assert cached is not None
        keys = tuple(
            HospitalKey(i, k.signer, k.valid_from, k.revoked_at, k.revoked_log_size)
            for i, k in enumerate(cached.keys)
        )
        hospitals.append(TrustedHospital(code, cached.level, names.get(code, code), keys))
    body = build_trust_list(
        hospitals, services.domain.chain_id, services.domain.contract, block, now, now + VALIDITY
    )
    return sign_trust_list(body, bytes(services.session.authority.key))


@router.get("")
def trust_list(services: ServicesDep) -> dict[str, Any]:
    """The signed trust list (docs/trust-list.md). Check it against the authority's address,
    which you must know from elsewhere: ``GET /health`` does not make it trustworthy."""
    return export_trust_list(services)
