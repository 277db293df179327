"""Reading stored invoices back into the verifier's model."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db import models
from verifier.canonical import invoice_id
from verifier.invoice import DetailLine, Invoice, ItemClass, VisitType

_HEX32 = re.compile(r"^0x[0-9a-fA-F]{64}$")
_REFERENCE = re.compile(r"^([0-9]{8})-([0-9]{10})$")


def invoice_key(key: str) -> bytes | None:
    """The invoice id named by ``key``: the id itself (0x + 64 hex digits) or the reference
    BILLCODE-BILLNUMBER; None when ``key`` is neither."""
    if _HEX32.match(key):
        return bytes.fromhex(key[2:])
    if match := _REFERENCE.match(key):
        return invoice_id(match.group(1), match.group(2))
    return None


def load_invoice(db: Session, row: models.Invoice) -> Invoice:
    """The full invoice (header and lines) of a stored row, as the hospital signed it.

    Times come back with the UTC offsets they were written with, so the record hash and the
    detail root recomputed from the result equal the signed ones.
    """
    line = models.InvoiceLine
    rows = db.execute(
        select(
            line.code,
            line.name,
            line.item_class,
            line.unit_price,
            line.quantity_milli,
            line.amount,
            line.department,
            line.at_epoch,
            line.utc_offset_minutes,
        )
        .where(line.invoice_id == row.invoice_id)
        .order_by(line.line_no)
    )  # plain rows, not ORM objects: an inpatient stay has hundreds of lines
    zones: dict[int, timezone] = {}
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
                code,
                name,
                ItemClass(item_class),
                unit_price,
                quantity,
                amount,
                department,
                datetime.fromtimestamp(
                    at, zones.setdefault(offset, timezone(timedelta(minutes=offset)))
                ),
            )
            for code, name, item_class, unit_price, quantity, amount, department, at, offset in rows
        ),
    )
