"""failed verifications per bill and hour, counted apart

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import api.db.models

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The counts in ``verifications`` written before this revision include failed attempts and
    # staff's verifications, which cannot be told apart afterwards: they are kept as they are.
    op.create_table(
        "verification_failures",
        sa.Column("bill", sa.String(length=40), nullable=False),
        sa.Column("hour", sa.BigInteger(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_at", api.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("bill", "hour", name=op.f("pk_verification_failures")),
    )


def downgrade() -> None:
    op.drop_table("verification_failures")
