"""Hospital onboarding by the authority: register on chain, record, issue an upload API key."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime

from sqlalchemy import select

from api.db import models
from api.services import Services
from chain.model import HospitalLevel

API_KEY_PREFIX = "zch_"


def api_key_hash(api_key: str) -> bytes:
    """What the database keeps of an API key: its SHA-256 (the key is shown once)."""
    return hashlib.sha256(api_key.encode()).digest()


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
    api_key = API_KEY_PREFIX + secrets.token_urlsafe(32)
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
    """The hospital code an API key belongs to, or None."""
    with services.sessions() as db:
        return db.scalar(
            select(models.Hospital.code).where(
                models.Hospital.api_key_hash == api_key_hash(api_key)
            )
        )
