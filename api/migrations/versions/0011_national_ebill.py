"""format 2: the national medical e-bill's header, split, charge categories and line fields

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 18:00:00

Every existing invoice is format 1 and keeps what it was signed with; the new columns are
NULL for it. A format-2 bill keeps its further header fields (business number, visit number
and date, insurance scheme), the till's payment split and its charge categories in
``invoices.bill`` (JSON), and each line its exact unit price, self-pay amount and share,
dosage form, specification, unit and charge category in columns of ``invoice_lines``. The
patient's insurance number, sex and age, when given, are kept encrypted in
``invoices.patient_details_enc``, as the name is.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("invoices") as batch:
        batch.add_column(sa.Column("format", sa.SmallInteger(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("bill", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("patient_details_enc", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("invoice_lines") as batch:
        batch.add_column(sa.Column("unit_price_e4", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("self_amount", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("self_rate_bp", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("form", sa.String(50), nullable=True))
        batch.add_column(sa.Column("specification", sa.String(100), nullable=True))
        batch.add_column(sa.Column("unit", sa.String(20), nullable=True))
        batch.add_column(sa.Column("charge_code", sa.String(20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("invoice_lines") as batch:
        for column in (
            "charge_code",
            "unit",
            "specification",
            "form",
            "self_rate_bp",
            "self_amount",
            "unit_price_e4",
        ):
            batch.drop_column(column)
    with op.batch_alter_table("invoices") as batch:
        batch.drop_column("patient_details_enc")
        batch.drop_column("bill")
        batch.drop_column("format")
