"""bill numbers are unique per hospital, not across hospitals

Revision ID: 0010
Revises: 0008
Create Date: 2026-11-24 12:00:00

A bill code is shared by every hospital of a region, so (bill code, bill number) is unique only
within the issuing hospital: the constraint becomes (bill code, bill number, hospital). Invoice
ids of existing rows are left as they are (they are anchored on chain); new invoices get ids
that include the hospital (verifier.canonical.invoice_id).
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("invoices") as batch:
        batch.drop_constraint("uq_invoices_bill", type_="unique")
        batch.create_unique_constraint(
            "uq_invoices_hospital_bill", ["bill_code", "bill_number", "hospital"]
        )


def downgrade() -> None:
    # Fails, as it must, once two hospitals share a bill code and number.
    with op.batch_alter_table("invoices") as batch:
        batch.drop_constraint("uq_invoices_hospital_bill", type_="unique")
        batch.create_unique_constraint("uq_invoices_bill", ["bill_code", "bill_number"])
