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
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db import models

if TYPE_CHECKING:
    from api.bootstrap import Services

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


def issue_token(services: Services, name: str, role: Role, payer: str | None) -> str:
    """A new staff token (shown once); ``payer`` for the role "payer" only."""
    if role == "payer" and payer not in services.session.payers:
        raise ValueError(f"no payer {payer!r}")
    if role != "payer" and payer is not None:
        raise ValueError("only a payer's staff belong to a payer")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with services.sessions() as db:
        db.add(
            models.StaffToken(
                token_hash=_digest(token),
                name=name,
                role=role,
                payer=payer,
                created_at=datetime.now(UTC),
            )
        )
        record(db, "admin:authority", "staff_token_issued", name, role=role, payer=payer)
        db.commit()
    return token


def revoke_token(services: Services, name: str, actor: str) -> bool:
    """Revokes the staff token named ``name`` at once; False when there is none to revoke."""
    with services.sessions() as db:
        row = db.scalar(select(models.StaffToken).where(models.StaffToken.name == name))
        if row is None or row.revoked_at is not None:
            return False
        row.revoked_at = datetime.now(UTC)
        record(db, actor, "staff_token_revoked", name, role=row.role, payer=row.payer)
        db.commit()
    return True


def staff_for_token(services: Services, token: str) -> Staff | None:
    """The member of staff a bearer token belongs to, or None."""
    admin = services.settings.admin_token.get_secret_value()
    if hmac.compare_digest(token.encode(), admin.encode()):
        return Staff("admin", "authority")
    if not token.startswith(TOKEN_PREFIX):
        return None
    with services.sessions() as db:
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


def log_change(services: Services, actor: str, action: str, subject: str, **detail: Any) -> None:
    """Writes one audit log entry in its own transaction."""
    with services.sessions() as db:
        record(db, actor, action, subject, **detail)
        db.commit()
