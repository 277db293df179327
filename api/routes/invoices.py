"""Invoices: batch upload by hospitals, status, inclusion proofs, red-letter reversal."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request
from pydantic import BaseModel, Field

from api.deps import HospitalDep, IngestDep, InvoicesDep, ReaderDep, VoidDep
from api.errors import status_of
from api.flows.upload import BatchResult
from api.flows.upload_items import csv_items
from api.read.invoices import InvoiceView

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


class PaymentPublic(BaseModel):
    """The till's split of a format-2 bill, fen (see docs/invoice-format.md)."""

    fund: int
    account: int
    other: int
    cash: int
    copay: int
    deductible: int
    self_pay: int


class ChargePublic(BaseModel):
    code: str
    name: str
    amount: int


class BillPublic(BaseModel):
    """What a format-2 bill carries beyond format 1."""

    business_number: str
    visit_number: str
    visit_on: date | None
    scheme: Literal["employee", "resident", "none"]
    payment: PaymentPublic
    charges: list[ChargePublic]


class InvoicePublic(BaseModel):
    invoice_id: str
    reference: str
    hospital: str
    issued_at: datetime
    total: int
    format: Literal[1, 2]
    insurance_paid: int  # fen the funds (and, format 2, the personal account) paid at the till
    patient_paid: int  # fen the patient paid (format 2: in cash)
    bill: BillPublic | None  # format 2 only
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
    ingest: IngestDep, hospital: HospitalDep, batch: Annotated[BatchUpload, Body()]
) -> BatchResultPublic:
    """Validates, verifies and stores a batch; every item gets its own result."""
    return _batch_public(ingest.upload(hospital, batch.items))


def _batch_public(result: BatchResult) -> BatchResultPublic:
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
            http_status=status_of(f.as_refused()),
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


def _invoice_public(view: InvoiceView) -> InvoicePublic:
    row = view.row
    return InvoicePublic(
        invoice_id=_hex(row.invoice_id) or "",
        reference=f"{row.bill_code}-{row.bill_number}",
        hospital=row.hospital,
        issued_at=row.issued_at,
        total=row.total,
        format=2 if row.format == 2 else 1,
        insurance_paid=row.insurance_paid,
        patient_paid=row.patient_paid,
        bill=BillPublic.model_validate(row.bill) if row.bill is not None else None,
        status=view.status,
        record_hash=_hex(row.record_hash) or "",
        detail_root=_hex(row.detail_root) or "",
        leaf_index=row.leaf_index,
        checkpoint_size=row.checkpoint_size,
        checkpoint_transaction=_hex(view.checkpoint_tx),
        line_count=row.line_count,
        received_at=row.received_at,
        batch_id=row.batch_id,
    )


@router.get("/{key}", response_model=InvoicePublic)
def get_invoice(invoices: InvoicesDep, reader: ReaderDep, key: str) -> InvoicePublic:
    """An invoice's status: pending, anchored (leaf index, checkpoint, transaction), voided.
    For its hospital, staff and its patient."""
    return _invoice_public(invoices.view(key, reader.may_read))


@router.get("/{key}/proof", response_model=InclusionProofPublic)
def inclusion_proof(
    invoices: InvoicesDep,
    reader: ReaderDep,
    key: str,
    checkpoint: Annotated[int | None, Query(ge=1, le=2**64 - 1)] = None,
) -> InclusionProofPublic:
    """RFC 9162 inclusion proof of the invoice's leaf against an anchored checkpoint (the
    latest by default); check it against ``checkpointRoot(size)`` on chain."""
    found = invoices.inclusion(key, reader.may_read, checkpoint)
    row = found.row
    return InclusionProofPublic(
        invoice_id=_hex(row.invoice_id) or "",
        leaf_index=found.leaf_index,
        checkpoint_size=found.checkpoint.size,
        checkpoint_root=_hex(found.checkpoint.root) or "",
        leaf={
            "invoice_id": _hex(row.invoice_id),
            "record_hash": _hex(row.record_hash),
            "hospital": row.hospital,
            "total": row.total,
            "entry": _hex(found.leaf_entry),
        },
        leaf_hash=_hex(found.leaf_hash) or "",
        proof=[_hex(p) or "" for p in found.proof],
    )


@router.post("/{key}/void", response_model=InvoicePublic)
def void_invoice(
    void: VoidDep, hospital: HospitalDep, key: str, request: VoidRequest
) -> InvoicePublic:
    """Red-letter reversal (红冲): relays the hospital's EIP-712 signature of
    VoidInvoice(invoiceId, redInvoiceId) to the ledger. Refused once anything was paid; another
    hospital's invoice does not exist for the caller (404, exactly as when reading it)."""
    return _invoice_public(void.void(hospital, key, request.red_invoice_id, request.signature))


@router.post(
    "/batches.csv",
    response_model=BatchResultPublic,
    openapi_extra={"requestBody": {"content": {"text/csv": {}}, "required": True}},
)
async def upload_csv_batch(
    ingest: IngestDep, hospital: HospitalDep, request: Request
) -> BatchResultPublic:
    """The same as ``/batches`` for a CSV batch (docs/invoice-format.md): one row per line."""
    from starlette.concurrency import run_in_threadpool

    # Invalid UTF-8 is kept as lone surrogates, which validation refuses in the field that
    # holds them: the other invoices of the file are still read.
    text = (await request.body()).decode("utf-8-sig", errors="surrogateescape")
    items = csv_items(text)
    return await run_in_threadpool(upload_batch, ingest, hospital, BatchUpload(items=items))


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
    invoices: InvoicesDep,
    hospital: HospitalDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[HospitalInvoice]:
    """The uploading hospital's own invoices, newest first, with their anchoring status."""
    return [
        HospitalInvoice(
            invoice_id=_hex(v.row.invoice_id) or "",
            reference=f"{v.row.bill_code}-{v.row.bill_number}",
            issued_at=v.row.issued_at,
            total=v.row.total,
            status=v.status,
            leaf_index=v.row.leaf_index,
            checkpoint_size=v.row.checkpoint_size,
        )
        for v in invoices.of_hospital(hospital, limit)
    ]
