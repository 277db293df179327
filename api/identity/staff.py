"""Who may act on claims besides citizens, and the audit log of who changed what.

Roles: the authority (the admin token from the settings: everything), a payer's staff (a token
the authority issues for one payer: that payer's review queue, decisions, counter claims and
search, never another payer's claims) and auditors (a token the authority issues: read-only,
every payer's claims, reconciliation, statistics). Only tokens' SHA-256 digests are stored.

Every state change outside a claim's own history (``claim_events``) is written to the audit
log with its actor and time; the database refuses to update or delete either (triggers of
migration 0005).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.db import models
from api.flows import ports
from api.refusals import Conflict, Invalid, NotFound

TOKEN_PREFIX = "zcs_"
Role = Literal["admin", "payer", "auditor"]


@dataclass(frozen=True)
class Staff:
    """An authenticated member of staff: the authority, a payer's, or an auditor."""

    role: Role
    name: str
    payer: str | None = None  # for role "payer"

    @property
    def actor(self) -> str:
        return f"{self.role}:{self.name}"

    def sees_payer(self, payer: str) -> bool:
        """Whether this member of staff may read that payer's claims."""
        return self.role != "payer" or self.payer == payer


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class StaffTokens:
    """The staff tokens the authority issues and revokes, and whom a bearer token names."""

    def __init__(
        self,
        uow: ports.UnitOfWork,
        admin_token: SecretStr,
        payers: Sequence[str],
        clock: ports.Clock = ports.utc_now,
    ) -> None:
        self._uow = uow
        self._admin_token = admin_token
        self._payers = tuple(payers)
        self._clock = clock

    def issue(self, name: str, role: Role, payer: str | None) -> str:
        """A new staff token (shown once); ``payer`` for the role "payer" only. Raises
        ``Invalid`` (``staff_invalid``) for a payer that is not one, or given to another role,
        and ``Conflict`` (``staff_exists``) when a token of that name exists."""
        if role == "payer" and payer not in self._payers:
            raise Invalid("staff_invalid", f"no payer {payer!r}")
        if role != "payer" and payer is not None:
            raise Invalid("staff_invalid", "only a payer's staff belong to a payer")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        try:
            with self._uow() as db:
                db.add(
                    models.StaffToken(
                        token_hash=_digest(token),
                        name=name,
                        role=role,
                        payer=payer,
                        created_at=self._clock(),
                    )
                )
                record(db, "admin:authority", "staff_token_issued", name, role=role, payer=payer)
                db.commit()
        except IntegrityError:
            raise Conflict("staff_exists", f"a token named {name!r} exists") from None
        return token

    def revoke(self, name: str, actor: str) -> None:
        """Revokes the staff token named ``name`` at once. Raises ``NotFound``
        (``staff_not_found``) when there is no live one of that name."""
        with self._uow() as db:
            row = db.scalar(select(models.StaffToken).where(models.StaffToken.name == name))
            if row is None or row.revoked_at is not None:
                raise NotFound("staff_not_found", f"no live staff token named {name!r}")
            row.revoked_at = self._clock()
            record(db, actor, "staff_token_revoked", name, role=row.role, payer=row.payer)
            db.commit()

    def staff_for(self, token: str) -> Staff | None:
        """The member of staff a bearer token belongs to, or None."""
        admin = self._admin_token.get_secret_value()
        if hmac.compare_digest(token.encode(), admin.encode()):
            return Staff("admin", "authority")
        if not token.startswith(TOKEN_PREFIX):
            return None
        with self._uow() as db:
            row = db.scalar(
                select(models.StaffToken).where(models.StaffToken.token_hash == _digest(token))
            )
        if row is None or row.revoked_at is not None:
            return None
        role: Role = "payer" if row.role == "payer" else "auditor"
        return Staff(role, row.name, row.payer)


def record(db: Session, actor: str, action: str, subject: str, **detail: Any) -> None:
    """Adds an audit log entry to ``db``'s transaction (the caller commits)."""
    db.add(
        models.AuditEntry(
            at=datetime.now(UTC), actor=actor, action=action, subject=subject, detail=detail
        )
    )


class AuditLog:
    """The audit log, written outside a caller's own transaction."""

    def __init__(self, uow: ports.UnitOfWork) -> None:
        self._uow = uow

    def log_change(self, actor: str, action: str, subject: str, **detail: Any) -> None:
        """Writes one audit log entry in its own transaction."""
        with self._uow() as db:
            record(db, actor, action, subject, **detail)
            db.commit()
