"""Hospital onboarding and keys, by the authority: register on chain, record, issue, rotate and
revoke the upload API key, rotate and revoke the signing key. Every change is in the audit log."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from api.bootstrap import Services
from api.db import models
from api.identity.staff import record
from chain.model import HospitalKey, HospitalLevel

API_KEY_PREFIX = "zch_"


class UnknownHospital(LookupError):
    """Raised when the hospital code is not one the service registered."""

    def __init__(self, code: str) -> None:
        super().__init__(f"no hospital {code!r}")
        self.code = code


def api_key_hash(api_key: str) -> bytes:
    """What the database keeps of an API key: its SHA-256 (the key is shown once)."""
    return hashlib.sha256(api_key.encode()).digest()


def _new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def register_hospital(
    services: Services,
    code: str,
    name: str,
    level: HospitalLevel,
    signer: str,
    valid_from: datetime,
) -> str:
    """Registers the hospital's signing key on chain (by the authority) and returns a new
    upload API key. Raises ``chain.errors.HospitalAlreadyRegistered`` for a known code."""
    session = services.session
    with services.lock:
        session.ledger.register_hospital(session.authority, code, level, signer, valid_from)
    api_key = _new_api_key()
    with services.sessions() as db:
        db.add(
            models.Hospital(
                code=code,
                name=name,
                level=int(level),
                api_key_hash=api_key_hash(api_key),
                created_at=datetime.now(UTC),
            )
        )
        db.commit()
    services.registry.refresh()
    return api_key


def hospital_for_api_key(services: Services, api_key: str) -> str | None:
    """The hospital code an API key belongs to, or None (a revoked or replaced key included)."""
    with services.sessions() as db:
        return db.scalar(
            select(models.Hospital.code).where(
                models.Hospital.api_key_hash == api_key_hash(api_key)
            )
        )


def rotate_api_key(services: Services, code: str, actor: str) -> str:
    """A new upload API key for the hospital (shown once); the old one stops working at once.
    Raises ``UnknownHospital``."""
    api_key = _new_api_key()
    with services.sessions() as db:
        row = db.get(models.Hospital, code)
        if row is None:
            raise UnknownHospital(code)
        replaced = row.api_key_hash is not None
        row.api_key_hash = api_key_hash(api_key)
        record(db, actor, "hospital_api_key_rotated", code, replaced=replaced)
        db.commit()
    return api_key


def revoke_api_key(services: Services, code: str, actor: str) -> bool:
    """Revokes the hospital's upload API key at once (it uploads nothing until a new key is
    issued); False when it has none. Raises ``UnknownHospital``."""
    with services.sessions() as db:
        row = db.get(models.Hospital, code)
        if row is None:
            raise UnknownHospital(code)
        if row.api_key_hash is None:
            return False
        row.api_key_hash = None
        record(db, actor, "hospital_api_key_revoked", code)
        db.commit()
    return True


@dataclass(frozen=True)
class KeyChange:
    """A hospital's signing key after a rotation or revocation, as the chain now has it."""

    hospital: str
    key: HospitalKey


def _known(services: Services, code: str) -> None:
    with services.sessions() as db:
        if db.get(models.Hospital, code) is None:
            raise UnknownHospital(code)


def _key_on_chain(services: Services, code: str, key_index: int) -> HospitalKey:
    with services.lock:
        hospital = services.session.ledger.hospital(code)
    assert hospital is not None  # the transaction that changed it succeeded
    return hospital.keys[key_index]


def rotate_signing_key(
    services: Services, code: str, signer: str, valid_from: datetime, actor: str
) -> KeyChange:
    """Adds a signing key valid from ``valid_from`` on chain; the current key stops then (a
    rotation, not a compromise: invoices it signed before stay payable whenever anchored).
    Raises ``UnknownHospital`` and the contract's ``KeyNotNewer`` / ``InvalidSigner``."""
    _known(services, code)
    session = services.session
    with services.lock:
        session.ledger.rotate_hospital_key(session.authority, code, signer, valid_from)
        hospital = session.ledger.hospital(code)
    assert hospital is not None
    key = hospital.keys[-1]
    services.registry.refresh()
    with services.sessions() as db:
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
    services: Services, code: str, key_index: int, revoked_at: datetime, actor: str
) -> KeyChange:
    """Revokes a signing key from ``revoked_at`` on (may be backdated to a compromise, not
    before the key's valid_from). The chain records the anchored log size: no invoice of this
    key first anchored after now is accepted, verified or paid, whatever its issue time.
    Raises ``UnknownHospital`` and the contract's ``UnknownKey`` / ``InvalidRevocationTime``."""
    _known(services, code)
    session = services.session
    with services.lock:
        session.ledger.revoke_hospital_key(session.authority, code, key_index, revoked_at)
    key = _key_on_chain(services, code, key_index)
    services.registry.refresh()
    with services.sessions() as db:
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
