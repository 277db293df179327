"""An invoice's QR fingerprint (text, PNG, SVG) and its printable form (PDF, PNG)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel
from sqlalchemy import select

from api.adapters import printing
from api.db import models
from api.deps import HospitalDep, Reader, ReaderDep, ServicesDep
from api.errors import ApiError
from api.read.invoices import load_invoice, payload_of
from api.routes.invoices import find_invoice
from verifier.qr import encode_payload, qr_png, qr_svg

router = APIRouter(prefix="/invoices", tags=["qr"])


class QrText(BaseModel):
    invoice_id: str
    payload: str
    length: int


@router.get("/{key}/qr", response_model=QrText)
def qr_text(services: ServicesDep, reader: ReaderDep, key: str) -> QrText:
    """The QR payload text (``ZC1:`` + base45 of canonical CBOR); for the invoice's hospital,
    staff and its patient."""
    row = find_invoice(services, key, reader)
    text = encode_payload(payload_of(services.domain, row))
    return QrText(invoice_id="0x" + row.invoice_id.hex(), payload=text, length=len(text))


@router.get(
    "/{key}/qr.png", response_class=Response, responses={200: {"content": {"image/png": {}}}}
)
def qr_image_png(
    services: ServicesDep,
    reader: ReaderDep,
    key: str,
    scale: Annotated[int, Query(ge=1, le=20)] = 4,
) -> Response:
    text = encode_payload(payload_of(services.domain, find_invoice(services, key, reader)))
    return Response(qr_png(text, scale=scale), media_type="image/png")


@router.get(
    "/{key}/qr.svg", response_class=Response, responses={200: {"content": {"image/svg+xml": {}}}}
)
def qr_image_svg(
    services: ServicesDep,
    reader: ReaderDep,
    key: str,
    scale: Annotated[int, Query(ge=1, le=20)] = 4,
) -> Response:
    text = encode_payload(payload_of(services.domain, find_invoice(services, key, reader)))
    return Response(qr_svg(text, scale=scale), media_type="image/svg+xml")


@router.get(
    "/{key}/print.{fmt}",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}, "image/png": {}}}},
)
def printable(
    services: ServicesDep, hospital: HospitalDep, key: str, fmt: Literal["pdf", "png"]
) -> Response:
    """The printable invoice of the issuing hospital: header, itemised table, QR code and the
    ledger receipt; PDF (every page, streamed) or PNG (the first page only). ``X-Page-Count``
    is the number of pages of the whole invoice. Carries the patient's name, so only the
    issuing hospital may fetch it."""
    row = find_invoice(services, key, Reader(hospital=hospital))  # others': 404
    with services.sessions() as db:
        invoice = load_invoice(db, row)
        hospital_row = db.get(models.Hospital, row.hospital)
        tx = (
            db.scalar(
                select(models.Checkpoint.tx_hash).where(
                    models.Checkpoint.size == row.checkpoint_size
                )
            )
            if row.checkpoint_size
            else None
        )
    name = (
        services.ingest.personal.decrypt_text(row.patient_name_enc, "patient_name")
        if row.patient_name_enc
        else None
    )
    receipt = printing.Receipt(
        invoice_id="0x" + row.invoice_id.hex(),
        record_hash="0x" + row.record_hash.hex(),
        leaf_index=row.leaf_index,
        checkpoint_size=row.checkpoint_size,
        checkpoint_tx="0x" + tx.hex() if tx else None,
        chain_id=services.domain.chain_id,
        contract=services.domain.contract,
        status="voided" if row.voided_by else "anchored" if row.checkpoint_size else "pending",
    )
    try:
        pages = printing.invoice_pages(
            invoice,
            hospital_row.name if hospital_row else row.hospital,
            encode_payload(payload_of(services.domain, row)),
            receipt,
            name,
        )
    except printing.IdNumberInName as exc:  # stored before uploads refused such names
        raise ApiError(409, "patient_name_unprintable", str(exc)) from None
    headers = {"X-Page-Count": str(pages.count)}
    if fmt == "pdf":
        # Streamed page by page: a 20,000-line invoice is 400 pages, drawn one at a time.
        return StreamingResponse(
            printing.pdf_chunks(pages), media_type="application/pdf", headers=headers
        )
    return Response(printing.invoice_png(pages), media_type="image/png", headers=headers)


@router.get("/{key}/lines/{line_no}/proof")
def line_proof(
    services: ServicesDep, hospital: HospitalDep, key: str, line_no: int
) -> dict[str, Any]:
    """Proof that detail line ``line_no`` (from 1) belongs to the anchored invoice, checkable
    with ``verifier.line_proof.verify_line_proof`` and the checkpoint root on chain. Lines are
    medical detail: only the issuing hospital may fetch them here."""
    from api.read.invoices import load_invoice, payload_of
    from verifier.canonical import detail_entries
    from verifier.line_proof import LineProof

    row = find_invoice(services, key, Reader(hospital=hospital))  # others': 404
    if row.leaf_index is None or row.checkpoint_size is None:
        raise ApiError(409, "invoice_not_anchored", "the invoice is not anchored yet")
    if not 1 <= line_no <= row.line_count:
        raise ApiError(404, "line_not_found", f"the invoice has lines 1..{row.line_count}")
    with services.sessions() as db:
        entries = detail_entries(load_invoice(db, row))
    from chain import merkle

    with services.lock:
        inclusion = services.log.inclusion_proof(row.leaf_index, row.checkpoint_size)
    proof = LineProof(
        payload=encode_payload(payload_of(services.domain, row)),
        line_no=line_no,
        line_entry=entries[line_no],
        detail_size=len(entries),
        detail_proof=tuple(merkle.inclusion_proof(entries, line_no)),
        leaf_index=row.leaf_index,
        checkpoint_size=row.checkpoint_size,
        inclusion_proof=tuple(inclusion),
    )
    return proof.as_json()
