"""Reading stored invoices back into the verifier's model."""

from __future__ import annotations

from datetime import timedelta, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db import models
from verifier.invoice import DetailLine, Invoice, ItemClass, VisitType


def load_invoice(db: Session, row: models.Invoice) -> Invoice:
    """The full invoice (header and lines) of a stored row, as the hospital signed it.

    Times come back with the UTC offsets they were written with, so the record hash and the
    detail root recomputed from the result equal the signed ones.
    """
    lines = db.scalars(
        select(models.InvoiceLine)
        .where(models.InvoiceLine.invoice_id == row.invoice_id)
        .order_by(models.InvoiceLine.line_no)
    )
    return Invoice(
        bill_code=row.bill_code,
        bill_number=row.bill_number,
        check_code=row.check_code,
        hospital=row.hospital,
        issued_at=row.issued_at.astimezone(
            timezone(timedelta(minutes=row.issued_utc_offset_minutes))
        ),
        visit_type=VisitType(row.visit_type),
        admitted_on=row.admitted_on,
        discharged_on=row.discharged_on,
        department=row.department,
        diagnoses=tuple(row.diagnoses),
        patient_commitment=row.patient_commitment,
        total=row.total,
        insurance_paid=row.insurance_paid,
        patient_paid=row.patient_paid,
        lines=tuple(
            DetailLine(
                ln.code,
                ln.name,
                ItemClass(ln.item_class),
                ln.unit_price,
                ln.quantity_milli,
                ln.amount,
                ln.department,
                ln.time,
            )
            for ln in lines
        ),
    )
