"""Hospital onboarding and keys, by the authority: register on chain, record, issue, rotate and
revoke the upload API key, rotate and revoke the signing key. Every change is in the audit log."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from api.adapters.registry import RegistryCache
from api.db import models
from api.flows import ports
from api.identity.staff import record
from api.refusals import NotFound
from chain.model import HospitalKey, HospitalLevel

API_KEY_PREFIX = "zch_"


class UnknownHospital(NotFound):
    """Raised when the hospital code is not one the service registered."""

    def __init__(self, code: str) -> None:
        super().__init__("hospital_not_found", f"no hospital {code!r}")
        self.hospital = code

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.hospital,))


def api_key_hash(api_key: str) -> bytes:
    """What the database keeps of an API key: its SHA-256 (the key is shown once)."""
    return hashlib.sha256(api_key.encode()).digest()


def _new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class KeyChange:
    """A hospital's signing key after a rotation or revocation, as the chain now has it."""

    hospital: str
    key: HospitalKey


class Hospitals:
    """The hospitals the service knows: their registration, upload API keys and signing keys
    (on chain, through the ledger; the registry cache is refreshed after each change)."""

    def __init__(
        self,
        uow: ports.UnitOfWork,
        ledger: ports.Ledger,
        registry: RegistryCache,
        clock: ports.Clock = ports.utc_now,
    ) -> None:
        self._uow = uow
        self._ledger = ledger
        self._registry = registry
        self._clock = clock

    def register(
        self,
        code: str,
        name: str,
        level: HospitalLevel,
        signer: str,
        valid_from: datetime,
        actor: str | None = None,
    ) -> str:
        """Registers the hospital's signing key on chain (by the authority) and returns a new
        upload API key; with ``actor``, the registration is in the audit log. Raises
        ``chain.errors.HospitalAlreadyRegistered`` for a known code."""
        self._ledger.register_hospital(code, level, signer, valid_from)
        api_key = _new_api_key()
        with self._uow() as db:
            db.add(
                models.Hospital(
                    code=code,
                    name=name,
                    level=int(level),
                    api_key_hash=api_key_hash(api_key),
                    created_at=self._clock(),
                )
            )
            db.commit()
        self._registry.refresh()
        if actor is not None:
            with self._uow() as db:
                record(
                    db,
                    actor,
                    "hospital_registered",
                    code,
                    level=level.name.lower(),
                    signer=signer,
                    valid_from=valid_from.isoformat(),
                )
                db.commit()
        return api_key

    def for_api_key(self, api_key: str) -> str | None:
        """The hospital code an API key belongs to, or None (a revoked or replaced key
        included)."""
        with self._uow() as db:
            return db.scalar(
                select(models.Hospital.code).where(
                    models.Hospital.api_key_hash == api_key_hash(api_key)
                )
            )

    def rotate_api_key(self, code: str, actor: str) -> str:
        """A new upload API key for the hospital (shown once); the old one stops working at
        once. Raises ``UnknownHospital``."""
        api_key = _new_api_key()
        with self._uow() as db:
            row = db.get(models.Hospital, code)
            if row is None:
                raise UnknownHospital(code)
            replaced = row.api_key_hash is not None
            row.api_key_hash = api_key_hash(api_key)
            record(db, actor, "hospital_api_key_rotated", code, replaced=replaced)
            db.commit()
        return api_key

    def revoke_api_key(self, code: str, actor: str) -> None:
        """Revokes the hospital's upload API key at once (it uploads nothing until a new key
        is issued). Raises ``UnknownHospital``, and ``NotFound`` (``api_key_not_found``) when
        it has none."""
        with self._uow() as db:
            row = db.get(models.Hospital, code)
            if row is None:
                raise UnknownHospital(code)
            if row.api_key_hash is None:
                raise NotFound("api_key_not_found", f"hospital {code!r} has no live API key")
            row.api_key_hash = None
            record(db, actor, "hospital_api_key_revoked", code)
            db.commit()

    def rotate_signing_key(
        self, code: str, signer: str, valid_from: datetime, actor: str
    ) -> KeyChange:
        """Adds a signing key valid from ``valid_from`` on chain; the current key stops then
        (a rotation, not a compromise: invoices it signed before stay payable whenever
        anchored). Raises ``UnknownHospital`` and the contract's ``KeyNotNewer`` /
        ``InvalidSigner``."""
        self._known(code)
        key = self._ledger.rotate_hospital_key(code, signer, valid_from).keys[-1]
        self._registry.refresh()
        with self._uow() as db:
            record(
                db,
                actor,
                "hospital_key_rotated",
                code,
                key_index=key.index,
                signer=signer,
                valid_from=valid_from.isoformat(),
            )
            db.commit()
        return KeyChange(code, key)

    def revoke_signing_key(
        self, code: str, key_index: int, revoked_at: datetime, actor: str
    ) -> KeyChange:
        """Revokes a signing key from ``revoked_at`` on (may be backdated to a compromise, not
        before the key's valid_from). The chain records the anchored log size: no invoice of
        this key first anchored after now is accepted, verified or paid, whatever its issue
        time. Raises ``UnknownHospital`` and the contract's ``UnknownKey`` /
        ``InvalidRevocationTime``."""
        self._known(code)
        self._ledger.revoke_hospital_key(code, key_index, revoked_at)
        hospital = self._ledger.hospital(code)
        assert hospital is not None  # the transaction that changed it succeeded
        key = hospital.keys[key_index]
        self._registry.refresh()
        with self._uow() as db:
            record(
                db,
                actor,
                "hospital_key_revoked",
                code,
                key_index=key_index,
                signer=key.signer,
                revoked_at=revoked_at.isoformat(),
                revoked_log_size=key.revoked_log_size,
            )
            db.commit()
        return KeyChange(code, key)

    def _known(self, code: str) -> None:
        with self._uow() as db:
            if db.get(models.Hospital, code) is None:
                raise UnknownHospital(code)
