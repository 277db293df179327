"""Reading stored invoices back into the verifier's model."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from api.db import models
from api.db.queries import chunks
from verifier.canonical import Domain, invoice_id
from verifier.invoice import DetailLine, Invoice, ItemClass, VisitType
from verifier.qr import VERSION, QrPayload

_ITEM_CLASS = {c.value: c for c in ItemClass}  # a dict lookup, not an enum call, per line

_HEX32 = re.compile(r"^0x[0-9a-fA-F]{64}$")
_REFERENCE = re.compile(r"^(?:([0-9A-Za-z]{1,32}):)?([0-9]{8})-([0-9]{10})$")


@dataclass(frozen=True)
class BillReference:
    """A bare ``BILLCODE-BILLNUMBER``: bill codes are shared by the hospitals of a region, so
    it names an invoice only among someone's own (a hospital's, a citizen's): see
    :func:`own_invoice`."""

    bill_code: str
    bill_number: str


def invoice_key(key: str) -> bytes | BillReference | None:
    """The invoice named by ``key``: its id, given (0x + 64 hex digits) or computed from
    ``HOSPITAL:BILLCODE-BILLNUMBER``; a :class:`BillReference` for a bare
    ``BILLCODE-BILLNUMBER``; None when ``key`` is none of these."""
    if _HEX32.fullmatch(key):
        return bytes.fromhex(key[2:])
    if match := _REFERENCE.fullmatch(key):
        hospital, bill_code, bill_number = match.groups()
        if hospital is None:
            return BillReference(bill_code, bill_number)
        return invoice_id(hospital, bill_code, bill_number)
    return None


def rows_by_bill(
    db: Session, references: Iterable[BillReference]
) -> dict[BillReference, list[models.Invoice]]:
    """Every stored invoice (of any hospital) of each bill code and number, one query per 500
    references; an empty list for a reference nobody issued."""
    wanted = sorted(set(references), key=lambda r: (r.bill_code, r.bill_number))
    found: dict[BillReference, list[models.Invoice]] = {r: [] for r in wanted}
    bill = tuple_(models.Invoice.bill_code, models.Invoice.bill_number)
    for chunk in chunks([(r.bill_code, r.bill_number) for r in wanted]):
        for row in db.scalars(
            select(models.Invoice).where(bill.in_(chunk)).order_by(models.Invoice.invoice_id)
        ):
            found[BillReference(row.bill_code, row.bill_number)].append(row)
    return found


def own_invoice(
    candidates: Sequence[models.Invoice], mine: Callable[[models.Invoice], bool]
) -> models.Invoice | None:
    """The one invoice among ``candidates`` (one bill code and number) for which ``mine``
    holds; None when there is none. Raises ``InvoiceKeyAmbiguous`` when there are several (a
    reader of every hospital's invoices, staff, must name the hospital)."""
    own = [row for row in candidates if mine(row)]
    if len(own) > 1:
        raise InvoiceKeyAmbiguous(f"{own[0].bill_code}-{own[0].bill_number}", len(own))
    return own[0] if own else None


def patients_invoice_ids(
    db: Session,
    keys: Mapping[int, object],
    patients: Mapping[int, bytes | None],
) -> dict[int, bytes | InvoiceKeyAmbiguous]:
    """For each position whose key is a :class:`BillReference`: the id of the invoice of that
    bill code and number whose patient is ``patients[position]`` (a citizen's ID number hash),
    or the ``InvoiceKeyAmbiguous`` error when the patient has several; positions whose patient
    has none are left out. One query per 500 references."""
    wanted = {i: key for i, key in keys.items() if isinstance(key, BillReference)}
    candidates = rows_by_bill(db, wanted.values())
    found: dict[int, bytes | InvoiceKeyAmbiguous] = {}
    for i, reference in wanted.items():
        patient = patients[i]
        try:
            row = own_invoice(candidates[reference], _of_patient(patient))
        except InvoiceKeyAmbiguous as exc:
            found[i] = exc
            continue
        if row is not None:
            found[i] = row.invoice_id
    return found


def _of_patient(patient: bytes | None) -> Callable[[models.Invoice], bool]:
    return lambda row: patient is not None and row.patient_id_hash == patient


class InvoiceKeyAmbiguous(Exception):
    """Raised when a bare BILLCODE-BILLNUMBER names several invoices one may read: several
    hospitals issued the number."""

    def __init__(self, reference: str, count: int) -> None:
        self.reference = reference
        self.count = count
        super().__init__(
            f"{count} hospitals issued {reference}: name one as HOSPITAL:{reference}, or use "
            "the invoice id"
        )


def payload_of(domain: Domain, row: models.Invoice) -> QrPayload:
    """The self-verifying payload of a stored invoice (docs/qr-format.md)."""
    return QrPayload(
        version=VERSION,
        chain_id=domain.chain_id,
        contract=domain.contract,
        bill_code=row.bill_code,
        bill_number=row.bill_number,
        check_code=row.check_code,
        hospital=row.hospital,
        issued_at=int(row.issued_at.timestamp()),
        total=row.total,
        detail_root=row.detail_root,
        patient_commitment=row.patient_commitment,
        signature=row.signature,
    )


def rows_by_id(db: Session, invoice_ids: Iterable[bytes]) -> dict[bytes, models.Invoice]:
    """The stored invoices among ``invoice_ids``, by id (one query per 500 ids)."""
    wanted = sorted(set(invoice_ids))
    found: dict[bytes, models.Invoice] = {}
    for chunk in chunks(wanted):
        found.update(
            (row.invoice_id, row)
            for row in db.scalars(
                select(models.Invoice).where(models.Invoice.invoice_id.in_(chunk))
            )
        )
    return found


def load_invoice(db: Session, row: models.Invoice) -> Invoice:
    """The full invoice (header and lines) of a stored row, as the hospital signed it.

    Times come back with the UTC offsets they were written with, so the record hash and the
    detail root recomputed from the result equal the signed ones.
    """
    return load_invoices(db, [row])[row.invoice_id]


def load_invoices(db: Session, rows: Iterable[models.Invoice]) -> dict[bytes, Invoice]:
    """:func:`load_invoice` of several rows, by id, with one query per 500 invoices."""
    rows = list(rows)
    lines: dict[bytes, list[DetailLine]] = {row.invoice_id: [] for row in rows}
    for iid, code, name, item_class, price, quantity, amount, department, at in line_rows(
        db, lines
    ):
        lines[iid].append(
            DetailLine(code, name, _ITEM_CLASS[item_class], price, quantity, amount, department, at)
        )
    return {row.invoice_id: _invoice(row, tuple(lines[row.invoice_id])) for row in rows}


LineRow = tuple[bytes, str, str, str, int, int, int, str, datetime]
"""A stored line as plain values: invoice id, code, name, class, unit price, quantity (milli),
amount, department, time (with the offset it was billed in)."""


def line_rows(db: Session, invoice_ids: Iterable[bytes]) -> Iterator[LineRow]:
    """The stored lines of these invoices, in order (by invoice id, then line number), as plain
    values: an inpatient stay has hundreds of lines, too many for ORM objects."""
    line = models.InvoiceLine
    zones: dict[int, timezone] = {}
    ids = sorted(set(invoice_ids))
    for chunk in chunks(ids):
        found = db.execute(
            select(
                line.invoice_id,
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
            .where(line.invoice_id.in_(chunk))
            .order_by(line.invoice_id, line.line_no)
        )
        for iid, code, name, item_class, price, quantity, amount, department, at, offset in found:
            zone = zones.get(offset)
            if zone is None:
                zone = zones[offset] = timezone(timedelta(minutes=offset))
            yield (
                iid,
                code,
                name,
                item_class,
                price,
                quantity,
                amount,
                department,
                datetime.fromtimestamp(at, zone),
            )


def _invoice(row: models.Invoice, lines: tuple[DetailLine, ...]) -> Invoice:
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
        lines=lines,
    )
