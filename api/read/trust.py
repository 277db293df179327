"""The signed trust list: every hospital's keys with their validity, for offline verifiers."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from api.adapters.registry import RegistryCache
from api.db import models
from api.flows import ports
from verifier.canonical import Domain
from verifier.trust_list import TrustedHospital, build_trust_list, sign_trust_list

VALIDITY = timedelta(days=7)


class TrustListRead:
    """The registry as the authority signs it for verifiers that work offline."""

    def __init__(
        self,
        uow: ports.UnitOfWork,
        ledger: ports.Ledger,
        registry: RegistryCache,
        domain: Domain,
        clock: ports.Clock = ports.utc_now,
    ) -> None:
        self._uow = uow
        self._ledger = ledger
        self._registry = registry
        self._domain = domain
        self._clock = clock

    def export(self, now: datetime | None = None) -> dict[str, Any]:
        """The current registry as a trust list signed by the authority, valid for
        ``VALIDITY`` from ``now``. ``sequence`` is the block number it was read at, so a newer
        list always has a higher sequence."""
        now = (now or self._clock()).replace(microsecond=0)
        self._registry.refresh()
        with self._uow() as db:
            names = dict(db.execute(select(models.Hospital.code, models.Hospital.name)).all())
        block = self._ledger.block_number()
        hospitals = []
        for code in sorted(self._registry.codes()):
            cached = self._registry.hospital(code)
            assert cached is not None
            hospitals.append(TrustedHospital.of(cached, names.get(code, code)))
        body = build_trust_list(
            hospitals, self._domain.chain_id, self._domain.contract, block, now, now + VALIDITY
        )
        return self._ledger.sign_as_authority(lambda key: sign_trust_list(body, key))
