"""Reading stored invoices: by id or reference, their status and inclusion proofs, and back
into the verifier's model."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from api.db import models
from api.db.queries import InvoiceStatus, chunks, invoice_status, leaf_of
from api.flows import ports
from api.refusals import Conflict, Invalid, NotFound
from chain.model import Checkpoint
from verifier.canonical import Domain, invoice_id
from verifier.invoice import DetailLine, Invoice, ItemClass, LineDetails, VisitType, bill_of_json
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
    for iid, line in line_rows(db, lines):
        lines[iid].append(line)
    return {row.invoice_id: _invoice(row, tuple(lines[row.invoice_id])) for row in rows}


def line_rows(db: Session, invoice_ids: Iterable[bytes]) -> Iterator[tuple[bytes, DetailLine]]:
    """The stored lines of these invoices, in order (by invoice id, then line number), with
    the id of each one's invoice: an inpatient stay has hundreds of lines, too many for ORM
    objects. Times come back with the offsets they were billed in."""
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
                line.unit_price_e4,
                line.self_amount,
                line.self_rate_bp,
                line.form,
                line.specification,
                line.unit,
                line.charge_code,
            )
            .where(line.invoice_id.in_(chunk))
            .order_by(line.invoice_id, line.line_no)
        )
        for row in found:
            iid, code, name, item_class, price, quantity, amount, department, at, offset = row[:10]
            zone = zones.get(offset)
            if zone is None:
                zone = zones[offset] = timezone(timedelta(minutes=offset))
            price_e4, self_amount, self_rate, form, specification, unit, charge = row[10:]
            details = (
                None
                if price_e4 is None
                else LineDetails(
                    form or "",
                    specification or "",
                    unit or "",
                    price_e4,
                    self_amount,
                    self_rate,
                    charge,
                )
            )
            yield (
                iid,
                DetailLine(
                    code,
                    name,
                    _ITEM_CLASS[item_class],
                    price,
                    quantity,
                    amount,
                    department,
                    datetime.fromtimestamp(at, zone),
                    details,
                ),
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
        bill=bill_of_json(row.bill) if row.bill is not None else None,
    )


Readable = Callable[[models.Invoice], bool]
"""Whether the one asking may read an invoice row (its hospital, staff, its patient)."""


def find_invoice(db: Session, key: str, may_read: Readable | None = None) -> models.Invoice:
    """An invoice by its id (0x + 64 hex) or reference (``HOSPITAL:BILLCODE-BILLNUMBER``, or a
    bare ``BILLCODE-BILLNUMBER`` among those ``may_read`` admits, else among everybody's);
    when ``may_read`` is given, only one it admits (others are as unknown as an unknown one).

    Raises ``Invalid`` (``invalid_invoice_key``) for a key that is none of these,
    ``Conflict`` (``invoice_key_ambiguous``) when a bare reference names several, and
    ``NotFound`` (``invoice_not_found``)."""
    named = invoice_key(key)
    if named is None:
        raise Invalid(
            "invalid_invoice_key",
            "use the invoice id (0x + 64 hex digits), HOSPITAL:BILLCODE-BILLNUMBER or "
            "BILLCODE-BILLNUMBER",
        )
    row: models.Invoice | None
    if isinstance(named, BillReference):
        try:
            row = own_invoice(rows_by_bill(db, [named])[named], may_read or (lambda _: True))
        except InvoiceKeyAmbiguous as exc:
            raise Conflict("invoice_key_ambiguous", str(exc), count=exc.count) from None
    else:
        row = db.get(models.Invoice, named)
    if row is None or (may_read is not None and not may_read(row)):
        raise NotFound("invoice_not_found", f"no invoice {key}")
    return row


@dataclass(frozen=True)
class InvoiceView:
    """An invoice's stored header and where it is: pending, anchored (its checkpoint's
    transaction), voided."""

    row: models.Invoice
    status: InvoiceStatus
    checkpoint_tx: bytes | None


@dataclass(frozen=True)
class InclusionView:
    """An invoice's leaf and its RFC 9162 inclusion proof against an anchored checkpoint."""

    row: models.Invoice
    leaf_index: int
    checkpoint: Checkpoint
    leaf_entry: bytes
    leaf_hash: bytes
    proof: list[bytes]


class InvoiceReads:
    """Invoices as their hospital, staff and their patient read them."""

    def __init__(self, uow: ports.UnitOfWork, ledger: ports.Ledger) -> None:
        self._uow = uow
        self._ledger = ledger

    def find(self, key: str, may_read: Readable | None = None) -> models.Invoice:
        """:func:`find_invoice` in its own session."""
        with self._uow() as db:
            return find_invoice(db, key, may_read)

    def view(self, key: str, may_read: Readable | None = None) -> InvoiceView:
        """The invoice named by ``key`` with its status (raises as :func:`find_invoice`)."""
        with self._uow() as db:
            row = find_invoice(db, key, may_read)
            tx = None
            if row.checkpoint_size is not None:
                tx = db.scalar(
                    select(models.Checkpoint.tx_hash).where(
                        models.Checkpoint.size == row.checkpoint_size
                    )
                )
        return InvoiceView(row, invoice_status(row), tx)

    def inclusion(
        self, key: str, may_read: Readable | None = None, checkpoint: int | None = None
    ) -> InclusionView:
        """The inclusion proof of the invoice against checkpoint ``checkpoint`` (the latest by
        default). Raises as :func:`find_invoice`, ``Conflict`` (``invoice_not_anchored``,
        ``invoice_not_in_checkpoint``) and ``NotFound`` (``checkpoint_not_found``)."""
        row = self.find(key, may_read)
        if row.leaf_index is None or row.checkpoint_size is None:
            raise Conflict("invoice_not_anchored", "the invoice is not anchored yet; retry soon")
        cp = self._ledger.checkpoint(checkpoint) if checkpoint else self._ledger.anchored()
        if cp is None:
            raise NotFound("checkpoint_not_found", f"no checkpoint of size {checkpoint}")
        if row.leaf_index >= cp.size:
            raise Conflict(
                "invoice_not_in_checkpoint",
                f"the invoice is leaf {row.leaf_index}, after checkpoint {cp.size}",
            )
        proof = self._ledger.inclusion_proof(row.leaf_index, cp.size)
        leaf_hash = self._ledger.leaf_hash(row.leaf_index)
        return InclusionView(row, row.leaf_index, cp, leaf_of(row).entry(), leaf_hash, proof)

    def of_hospital(self, hospital: str, limit: int) -> list[InvoiceView]:
        """The hospital's own invoices, newest first, with their status (no transaction)."""
        with self._uow() as db:
            rows = db.scalars(
                select(models.Invoice)
                .where(models.Invoice.hospital == hospital)
                .order_by(models.Invoice.received_at.desc(), models.Invoice.bill_number.desc())
                .limit(limit)
            ).all()
        return [InvoiceView(row, invoice_status(row), None) for row in rows]
