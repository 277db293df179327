"""Citizens: enrolment, sign-in with bearer tokens, and "my invoices" (``Citizens``).

In production a citizen signs in through the province's identity provider (浙里办 and the
like), which vouches for the ID number; this service then only maps the verified ID number to
its keyed hash. The demo signs citizens in with their ID number and a password (scrypt),
which is what ``enrol`` stores. Either way the ID number itself is never stored.

Sign-in is rate-limited per client (every attempt) and per ID number (every attempt, enrolled
or not), and costs the same whether or not the ID number is enrolled: the password is always
run through scrypt, against a stand-in hash when there is no stored one, so neither the answer
nor its time tells who is enrolled.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from api.adapters.personal_data import PersonalData
from api.db import models
from api.db.queries import InvoiceStatus, chunks, invoice_status
from api.flows import ports
from api.flows.verify import RateLimiter
from api.refusals import TooMany, Unauthenticated
from api.settings import Settings

TOKEN_LIFETIME = timedelta(hours=12)
TOKEN_PREFIX = "zcc_"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 64}
# Checked against when there is no stored hash: a salt and a digest no password produces.
_NO_PASSWORD = bytes(32 + 64)


class AlreadyEnrolled(Exception):
    """Raised when enrolling an ID number that is enrolled already."""


class SignInRefused(Unauthenticated):
    """Raised when an ID number and password do not match an enrolled citizen
    (``sign_in_refused``)."""

    def __init__(self, message: str = "ID number or password not recognised") -> None:
        super().__init__("sign_in_refused", message)


class SignInThrottled(TooMany):
    """Raised when a client or an ID number has made too many sign-in attempts
    (``sign_in_rate_limited``); ``wait`` is the seconds until the next attempt is let through."""

    def __init__(self, wait: float) -> None:
        super().__init__(
            "sign_in_rate_limited", f"too many sign-in attempts: retry in {wait:.0f} s", wait
        )
        self.wait = wait


@dataclass(frozen=True)
class SignInLimits:
    """Token buckets over sign-in attempts: per client (``ZEROCLAIM_SIGN_IN_PER_MINUTE``, bursts
    of ``ZEROCLAIM_SIGN_IN_BURST``) and per ID number (``ZEROCLAIM_SIGN_IN_ACCOUNT_PER_HOUR``,
    which is also its burst). The ID number's bucket is keyed by its keyed hash and takes
    every attempt, enrolled or not, so being refused tells nothing of enrolment."""

    per_client: RateLimiter
    per_id_number: RateLimiter

    @classmethod
    def from_settings(cls, settings: Settings) -> SignInLimits:
        per_hour = settings.sign_in_account_per_hour
        return cls(
            RateLimiter(settings.sign_in_per_minute, settings.sign_in_burst),
            RateLimiter(per_hour / 60, per_hour),
        )

    def admit(self, client: str, id_number_hash: bytes) -> None:
        """Takes one attempt from both buckets; raises ``SignInThrottled`` when either is
        empty (the client's is asked first, so a throttled client uses up no ID number's)."""
        wait = self.per_client.allow(client) or self.per_id_number.allow(id_number_hash.hex())
        if wait > 0:
            raise SignInThrottled(wait)


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


@dataclass(frozen=True)
class CitizenInvoice:
    """One of a citizen's invoices as they see it listed: the row, its hospital's name and
    where it is (pending, anchored, voided)."""

    row: models.Invoice
    hospital_name: str
    status: InvoiceStatus


class Citizens:
    """Enrolled citizens: enrolment, sign-in, the citizen of a token, their invoices."""

    def __init__(
        self,
        uow: ports.UnitOfWork,
        personal: PersonalData,
        limits: SignInLimits,
        clock: ports.Clock = ports.utc_now,
    ) -> None:
        self._uow = uow
        self._personal = personal
        self._limits = limits
        self._clock = clock

    def enrol(
        self,
        id_number: str,
        name: str,
        sex: str,
        birth_date: date,
        password: str | None,
        assistance_eligible: bool = False,
    ) -> int:
        """Adds a citizen; returns its id. Raises ``AlreadyEnrolled``."""
        with self._uow() as db:
            citizen = models.Citizen(
                id_number_hash=self._personal.id_number_hash(id_number),
                name_enc=self._personal.encrypt_text(name, "citizen_name"),
                sex=sex,
                birth_date=birth_date,
                assistance_eligible=assistance_eligible,
                password_hash=_password_hash(password) if password else None,
                created_at=self._clock(),
            )
            db.add(citizen)
            try:
                db.commit()
            except IntegrityError:
                raise AlreadyEnrolled("this ID number is enrolled already") from None
            return citizen.id

    def sign_in(self, id_number: str, password: str, client: str) -> SignedIn:
        """A new bearer token for the citizen; raises ``SignInThrottled`` past the limits and
        ``SignInRefused`` (the same, after the same work, for an unknown ID number and a wrong
        password)."""
        id_hash = self._personal.id_number_hash(id_number)
        self._limits.admit(client, id_hash)
        with self._uow() as db:
            citizen = db.scalar(
                select(models.Citizen).where(models.Citizen.id_number_hash == id_hash)
            )
            stored = citizen.password_hash if citizen is not None else None
            matches = _password_ok(password, stored or _NO_PASSWORD)
            if citizen is None or stored is None or not matches:
                raise SignInRefused()
            token = TOKEN_PREFIX + secrets.token_urlsafe(32)
            now = self._clock()
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

    def for_token(self, token: str) -> models.Citizen | None:
        """The citizen a live token belongs to, or None."""
        with self._uow() as db:
            row = db.get(models.CitizenToken, hashlib.sha256(token.encode()).digest())
            if row is None or row.expires_at <= self._clock():
                return None
            return db.get(models.Citizen, row.citizen_id)

    def by_id_numbers(self, id_numbers: list[str]) -> list[models.Citizen | None]:
        """The enrolled citizen of each ID number (None for one not enrolled), in order."""
        hashes = [self._personal.id_number_hash(n) for n in id_numbers]
        found: dict[bytes, models.Citizen] = {}
        with self._uow() as db:
            for chunk in chunks(sorted(set(hashes))):
                found.update(
                    (c.id_number_hash, c)
                    for c in db.scalars(
                        select(models.Citizen).where(models.Citizen.id_number_hash.in_(chunk))
                    )
                )
        return [found.get(h) for h in hashes]

    def name_of(self, citizen: models.Citizen) -> str:
        return self._personal.decrypt_text(citizen.name_enc, "citizen_name")

    def invoices_of(self, citizen: models.Citizen) -> list[CitizenInvoice]:
        """Every invoice whose patient is this citizen, newest first (matched by the keyed
        hash of the ID number the hospital gave with the invoice)."""
        with self._uow() as db:
            rows = list(
                db.scalars(
                    select(models.Invoice)
                    .where(models.Invoice.patient_id_hash == citizen.id_number_hash)
                    .order_by(models.Invoice.issued_at.desc())
                )
            )
            names = dict(db.execute(select(models.Hospital.code, models.Hospital.name)).all())
        return [
            CitizenInvoice(r, names.get(r.hospital, r.hospital), invoice_status(r)) for r in rows
        ]
