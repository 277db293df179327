"""Invoices: batch upload by hospitals, status, inclusion proofs, red-letter reversal."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from api.bootstrap import Services
from api.db import models
from api.deps import HospitalDep, Reader, ReaderDep, ServicesDep
from api.errors import ApiError
from api.flows.upload import receipt_of
from api.identity.staff import record
from api.read.invoices import (
    BillReference,
    InvoiceKeyAmbiguous,
    invoice_key,
    own_invoice,
    rows_by_bill,
)
from chain.model import InvoiceLeaf

router = APIRouter(prefix="/invoices", tags=["invoices"])


class BatchUpload(BaseModel):
    """A hospital's batch: each item is ``{"invoice": {...}, "signature": "0x..",
    "patient": {"id_number", "name", "salt"}}`` (see docs/api.md). Items are checked one by
    one by the ingest service (an item that is not even an object is refused alone)."""

    items: list[Any] = Field(min_length=1, max_length=5000)


class Problem(BaseModel):
    path: str
    reason: str


class ItemResult(BaseModel):
    index: int
    reference: str
    status: Literal["accepted", "duplicate", "refused"]
    http_status: int
    invoice_id: str | None = None
    record_hash: str | None = None
    received_at: datetime | None = None
    batch_id: str | None = None
    code: str | None = None
    problems: list[Problem] = []


class BatchResultPublic(BaseModel):
    batch_id: str
    accepted: int
    duplicates: int
    refused: int
    items: list[ItemResult]


class InvoicePublic(BaseModel):
    invoice_id: str
    reference: str
    hospital: str
    issued_at: datetime
    total: int
    status: Literal["pending", "anchored", "voided"]
    record_hash: str
    detail_root: str
    leaf_index: int | None
    checkpoint_size: int | None
    checkpoint_transaction: str | None
    line_count: int
    received_at: datetime
    batch_id: str


class InclusionProofPublic(BaseModel):
    invoice_id: str
    leaf_index: int
    checkpoint_size: int
    checkpoint_root: str
    leaf: dict[str, Any]
    leaf_hash: str
    proof: list[str]


class VoidRequest(BaseModel):
    red_invoice_id: str = Field(pattern=r"^0x[0-9a-fA-F]{64}$")
    signature: str = Field(pattern=r"^0x[0-9a-fA-F]{130}$")


def _hex(b: bytes | None) -> str | None:
    return None if b is None else "0x" + b.hex()


@router.post("/batches", response_model=BatchResultPublic)
def upload_batch(
    services: ServicesDep, hospital: HospitalDep, batch: Annotated[BatchUpload, Body()]
) -> BatchResultPublic:
    """Validates, verifies and stores a batch; every item gets its own result."""
    result = services.ingest.upload(hospital, batch.items)
    items = [
        ItemResult(
            index=i,
            reference=r.reference,
            status="duplicate" if r.duplicate else "accepted",
            http_status=200 if r.duplicate else 201,
            invoice_id=_hex(r.invoice_id),
            record_hash=_hex(r.record_hash),
            received_at=r.received_at,
            batch_id=r.batch_id,
        )
        for i, r in result.receipts
    ]
    items += [
        ItemResult(
            index=f.index,
            reference=f.reference,
            status="refused",
            http_status=f.status,
            code=f.code,
            problems=[Problem(path=p.path, reason=p.reason) for p in f.problems],
        )
        for f in result.refusals
    ]
    items.sort(key=lambda item: item.index)
    duplicates = sum(1 for _, r in result.receipts if r.duplicate)
    return BatchResultPublic(
        batch_id=result.batch_id,
        accepted=len(result.receipts) - duplicates,
        duplicates=duplicates,
        refused=len(result.refusals),
        items=items,
    )


def find_invoice(
    services: Services, key: str, reader: Reader | None = None, *, hospital: str | None = None
) -> models.Invoice:
    """An invoice by its id (0x + 64 hex) or reference (``HOSPITAL:BILLCODE-BILLNUMBER``, or a
    bare ``BILLCODE-BILLNUMBER`` among the invoices of ``reader``, else of ``hospital``, else
    of anyone: 409 when it names several); when ``reader`` is given, only one it may read
    (others get the same 404 as an unknown one)."""
    named = invoice_key(key)
    if named is None:
        raise ApiError(
            422,
            "invalid_invoice_key",
            "use the invoice id (0x + 64 hex digits), HOSPITAL:BILLCODE-BILLNUMBER or "
            "BILLCODE-BILLNUMBER",
        )
    with services.sessions() as db:
        if isinstance(named, BillReference):
            mine = (
                reader.may_read
                if reader is not None
                else (lambda row: row.hospital == hospital)
                if hospital is not None
                else (lambda row: True)
            )
            try:
                row = own_invoice(rows_by_bill(db, [named])[named], mine)
            except InvoiceKeyAmbiguous as exc:
                raise ApiError(409, "invoice_key_ambiguous", str(exc), count=exc.count) from None
        else:
            row = db.get(models.Invoice, named)
    if row is None or (reader is not None and not reader.may_read(row)):
        raise ApiError(404, "invoice_not_found", f"no invoice {key}")
    return row


@router.get("/{key}", response_model=InvoicePublic)
def get_invoice(services: ServicesDep, reader: ReaderDep, key: str) -> InvoicePublic:
    """An invoice's status: pending, anchored (leaf index, checkpoint, transaction), voided.
    For its hospital, staff and its patient."""
    row = find_invoice(services, key, reader)
    tx = None
    if row.checkpoint_size is not None:
        with services.sessions() as db:
            tx = db.scalar(
                select(models.Checkpoint.tx_hash).where(
                    models.Checkpoint.size == row.checkpoint_size
                )
            )
    status: Literal["pending", "anchored", "voided"] = (
        "voided" if row.voided_by else "anchored" if row.checkpoint_size else "pending"
    )
    return InvoicePublic(
        invoice_id=_hex(row.invoice_id) or "",
        reference=receipt_of(row).reference,
        hospital=row.hospital,
        issued_at=row.issued_at,
        total=row.total,
        status=status,
        record_hash=_hex(row.record_hash) or "",
        detail_root=_hex(row.detail_root) or "",
        leaf_index=row.leaf_index,
        checkpoint_size=row.checkpoint_size,
        checkpoint_transaction=_hex(tx),
        line_count=row.line_count,
        received_at=row.received_at,
        batch_id=row.batch_id,
    )


@router.get("/{key}/proof", response_model=InclusionProofPublic)
def inclusion_proof(
    services: ServicesDep,
    reader: ReaderDep,
    key: str,
    checkpoint: Annotated[int | None, Query(ge=1, le=2**64 - 1)] = None,
) -> InclusionProofPublic:
    """RFC 9162 inclusion proof of the invoice's leaf against an anchored checkpoint (the
    latest by default); check it against ``checkpointRoot(size)`` on chain."""
    row = find_invoice(services, key, reader)
    if row.leaf_index is None or row.checkpoint_size is None:
        raise ApiError(409, "invoice_not_anchored", "the invoice is not anchored yet; retry soon")
    with services.lock:
        cp = (
            services.session.ledger.checkpoint(checkpoint)
            if checkpoint
            else services.sequencer.anchored()
        )
        if cp is None:
            raise ApiError(404, "checkpoint_not_found", f"no checkpoint of size {checkpoint}")
        if row.leaf_index >= cp.size:
            raise ApiError(
                409,
                "invoice_not_in_checkpoint",
                f"the invoice is leaf {row.leaf_index}, after checkpoint {cp.size}",
            )
        proof = services.log.inclusion_proof(row.leaf_index, cp.size)
        leaf_hash = services.log.leaf_hash(row.leaf_index)
    leaf = InvoiceLeaf(row.invoice_id, row.record_hash, row.hospital, row.total)
    return InclusionProofPublic(
        invoice_id=_hex(row.invoice_id) or "",
        leaf_index=row.leaf_index,
        checkpoint_size=cp.size,
        checkpoint_root=_hex(cp.root) or "",
        leaf={
            "invoice_id": _hex(leaf.invoice_id),
            "record_hash": _hex(leaf.record_hash),
            "hospital": leaf.hospital,
            "total": leaf.total,
            "entry": _hex(leaf.entry()),
        },
        leaf_hash=_hex(leaf_hash) or "",
        proof=[_hex(p) or "" for p in proof],
    )


@router.post("/{key}/void", response_model=InvoicePublic)
def void_invoice(
    services: ServicesDep, hospital: HospitalDep, key: str, request: VoidRequest
) -> InvoicePublic:
    """Red-letter reversal (红冲): relays the hospital's EIP-712 signature of
    VoidInvoice(invoiceId, redInvoiceId) to the ledger. Refused once anything was paid; another
    hospital's invoice does not exist for the caller (404, exactly as when reading it)."""
    row = find_invoice(services, key, hospital=hospital)
    if row.hospital != hospital:
        raise ApiError(404, "invoice_not_found", f"no invoice {key}")
    if row.voided_by is not None:
        raise ApiError(409, "invoice_voided", "the invoice is voided already")
    if row.leaf_index is None:
        raise ApiError(409, "invoice_not_anchored", "the invoice is not anchored yet; retry soon")
    red = bytes.fromhex(request.red_invoice_id[2:])
    with services.lock:
        cp = services.sequencer.anchored()
        if cp is None or row.leaf_index >= cp.size:
            cp = services.sequencer.anchor()
        assert cp is not None
        proof = services.log.inclusion_proof(row.leaf_index, cp.size)
        leaf = InvoiceLeaf(row.invoice_id, row.record_hash, row.hospital, row.total)
        services.session.ledger.void_invoice(
            services.session.sequencer,
            cp.size,
            leaf,
            row.leaf_index,
            proof,
            red,
            bytes.fromhex(request.signature[2:]),
        )
    with services.sessions() as db:
        stored = db.get(models.Invoice, row.invoice_id)
        assert stored is not None
        stored.voided_by = red
        stored.voided_at = datetime.now(UTC)
        record(
            db,
            f"hospital:{hospital}",
            "invoice_voided",
            f"{row.bill_code}-{row.bill_number}",
            red_invoice_id=request.red_invoice_id,
        )
        db.commit()
    return get_invoice(services, Reader(hospital=hospital), _hex(row.invoice_id) or "")


@router.post(
    "/batches.csv",
    response_model=BatchResultPublic,
    openapi_extra={"requestBody": {"content": {"text/csv": {}}, "required": True}},
)
async def upload_csv_batch(
    services: ServicesDep, hospital: HospitalDep, request: Request
) -> BatchResultPublic:
    """The same as ``/batches`` for a CSV batch (docs/invoice-format.md): one row per line."""
    from starlette.concurrency import run_in_threadpool

    from api.adapters.hospital_files import read_csv_batch

    # Invalid UTF-8 is kept as lone surrogates, which validation refuses in the field that
    # holds them: the other invoices of the file are still read.
    text = (await request.body()).decode("utf-8-sig", errors="surrogateescape")
    try:
        items = read_csv_batch(text)
    except (ValueError, KeyError) as exc:
        raise ApiError(422, "invalid_csv", f"the CSV cannot be read: {exc}") from None
    if not items or len(items) > 5000:
        raise ApiError(422, "invalid_csv", "a CSV batch holds 1 to 5,000 invoices")
    return await run_in_threadpool(upload_batch, services, hospital, BatchUpload(items=items))


class HospitalInvoice(BaseModel):
    invoice_id: str
    reference: str
    issued_at: datetime
    total: int
    status: Literal["pending", "anchored", "voided"]
    leaf_index: int | None
    checkpoint_size: int | None


@router.get("", response_model=list[HospitalInvoice])
def hospital_invoices(
    services: ServicesDep, hospital: HospitalDep, limit: Annotated[int, Query(ge=1, le=1000)] = 200
) -> list[HospitalInvoice]:
    """The uploading hospital's own invoices, newest first, with their anchoring status."""
    with services.sessions() as db:
        rows = db.scalars(
            select(models.Invoice)
            .where(models.Invoice.hospital == hospital)
            .order_by(models.Invoice.received_at.desc(), models.Invoice.bill_number.desc())
            .limit(limit)
        ).all()
    return [
        HospitalInvoice(
            invoice_id=_hex(r.invoice_id) or "",
            reference=f"{r.bill_code}-{r.bill_number}",
            issued_at=r.issued_at,
            total=r.total,
            status="voided" if r.voided_by else "anchored" if r.checkpoint_size else "pending",
            leaf_index=r.leaf_index,
            checkpoint_size=r.checkpoint_size,
        )
        for r in rows
    ]
