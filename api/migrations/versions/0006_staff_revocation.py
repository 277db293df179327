"""staff tokens can be revoked

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 22:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import api.db.models

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("staff_tokens") as batch:
        batch.add_column(
            sa.Column("revoked_at", api.db.models.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("staff_tokens") as batch:
        batch.drop_column("revoked_at")
