"""Citizens: enrolment, sign-in with bearer tokens, and "my invoices".

In production a citizen signs in through the province's identity provider (浙里办 and the
like), which vouches for the ID number; this service then only maps the verified ID number to
its keyed hash. The demo signs citizens in with their ID number and a password (scrypt),
which is what ``enrol`` stores. Either way the ID number itself is never stored.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from api.db import models
from api.services import Services

TOKEN_LIFETIME = timedelta(hours=12)
TOKEN_PREFIX = "zcc_"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 64}


class CitizenError(Exception):
    """Root of the citizen errors."""


class SignInRefused(CitizenError):
    """Raised when an ID number and password do not match an enrolled citizen."""


class AlreadyEnrolled(CitizenError):
    """Raised when enrolling an ID number that is enrolled already."""


def _password_hash(password: str, salt: bytes | None = None) -> bytes:
    salt = salt or os.urandom(32)
    return salt + hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)


def _password_ok(password: str, stored: bytes) -> bool:
    return hmac.compare_digest(_password_hash(password, stored[:32]), stored)


@dataclass(frozen=True)
class SignedIn:
    citizen_id: int
    token: str
    expires_at: datetime


def enrol(
    services: Services,
    id_number: str,
    name: str,
    sex: str,
    birth_date: date,
    password: str | None,
    assistance_eligible: bool = False,
) -> int:
    """Adds a citizen; returns its id. Raises ``AlreadyEnrolled``."""
    personal = services.ingest.personal
    with services.sessions() as db:
        citizen = models.Citizen(
            id_number_hash=personal.id_number_hash(id_number),
            name_enc=personal.encrypt_text(name, "citizen_name"),
            sex=sex,
            birth_date=birth_date,
            assistance_eligible=assistance_eligible,
            password_hash=_password_hash(password) if password else None,
            created_at=datetime.now(UTC),
        )
        db.add(citizen)
        try:
            db.commit()
        except IntegrityError:
            raise AlreadyEnrolled("this ID number is enrolled already") from None
        return citizen.id


def sign_in(services: Services, id_number: str, password: str) -> SignedIn:
    """A new bearer token for the citizen; raises ``SignInRefused`` (the same for an unknown ID
    number and a wrong password)."""
    id_hash = services.ingest.personal.id_number_hash(id_number)
    with services.sessions() as db:
        citizen = db.scalar(select(models.Citizen).where(models.Citizen.id_number_hash == id_hash))
        if (
            citizen is None
            or citizen.password_hash is None
            or not _password_ok(password, citizen.password_hash)
        ):
            raise SignInRefused("ID number or password not recognised")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        db.execute(delete(models.CitizenToken).where(models.CitizenToken.expires_at < now))
        db.add(
            models.CitizenToken(
                token_hash=hashlib.sha256(token.encode()).digest(),
                citizen_id=citizen.id,
                expires_at=now + TOKEN_LIFETIME,
            )
        )
        db.commit()
        return SignedIn(citizen.id, token, now + TOKEN_LIFETIME)


def citizen_for_token(services: Services, token: str) -> models.Citizen | None:
    """The citizen a live token belongs to, or None."""
    with services.sessions() as db:
        row = db.get(models.CitizenToken, hashlib.sha256(token.encode()).digest())
        if row is None or row.expires_at <= datetime.now(UTC):
            return None
        return db.get(models.Citizen, row.citizen_id)


def my_invoices(services: Services, citizen: models.Citizen) -> list[models.Invoice]:
    """Every invoice whose patient is this citizen, newest first (matched by the keyed hash of
    the ID number the hospital gave with the invoice)."""
    with services.sessions() as db:
        return list(
            db.scalars(
                select(models.Invoice)
                .where(models.Invoice.patient_id_hash == citizen.id_number_hash)
                .order_by(models.Invoice.issued_at.desc())
            )
        )
