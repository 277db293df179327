"""An invoice's QR fingerprint (text, PNG, SVG) and its printable form (PDF, PNG)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel

from api.db import models
from api.deps import HospitalDep, QrDep, ReaderDep
from verifier.qr import qr_png, qr_svg

router = APIRouter(prefix="/invoices", tags=["qr"])


class QrText(BaseModel):
    invoice_id: str
    payload: str
    length: int


def _issued_by(hospital: str) -> Callable[[models.Invoice], bool]:
    """Only the issuing hospital reads what carries the patient's name or medical detail;
    others' invoices are as unknown to it as missing ones (404)."""
    return lambda row: row.hospital == hospital


@router.get("/{key}/qr", response_model=QrText)
def qr_text(qr: QrDep, reader: ReaderDep, key: str) -> QrText:
    """The QR payload text (``ZC1:`` + base45 of canonical CBOR); for the invoice's hospital,
    staff and its patient."""
    found = qr.text(key, reader.may_read)
    return QrText(
        invoice_id="0x" + found.invoice_id.hex(), payload=found.text, length=len(found.text)
    )


@router.get(
    "/{key}/qr.png", response_class=Response, responses={200: {"content": {"image/png": {}}}}
)
def qr_image_png(
    qr: QrDep,
    reader: ReaderDep,
    key: str,
    scale: Annotated[int, Query(ge=1, le=20)] = 4,
) -> Response:
    text = qr.text(key, reader.may_read).text
    return Response(qr_png(text, scale=scale), media_type="image/png")


@router.get(
    "/{key}/qr.svg", response_class=Response, responses={200: {"content": {"image/svg+xml": {}}}}
)
def qr_image_svg(
    qr: QrDep,
    reader: ReaderDep,
    key: str,
    scale: Annotated[int, Query(ge=1, le=20)] = 4,
) -> Response:
    text = qr.text(key, reader.may_read).text
    return Response(qr_svg(text, scale=scale), media_type="image/svg+xml")


@router.get(
    "/{key}/print.{fmt}",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}, "image/png": {}}}},
)
def printable(qr: QrDep, hospital: HospitalDep, key: str, fmt: Literal["pdf", "png"]) -> Response:
    """The printable invoice of the issuing hospital: header, itemised table, QR code and the
    ledger receipt; PDF (every page, streamed) or PNG (the first page only). ``X-Page-Count``
    is the number of pages of the whole invoice. Carries the patient's name, so only the
    issuing hospital may fetch it."""
    pages = qr.printable(key, _issued_by(hospital))
    headers = {"X-Page-Count": str(pages.count)}
    if fmt == "pdf":
        # Streamed page by page: a 20,000-line invoice is 400 pages, drawn one at a time.
        return StreamingResponse(pages.pdf_chunks(), media_type="application/pdf", headers=headers)
    return Response(pages.png(), media_type="image/png", headers=headers)


@router.get("/{key}/lines/{line_no}/proof")
def line_proof(qr: QrDep, hospital: HospitalDep, key: str, line_no: int) -> dict[str, Any]:
    """Proof that detail line ``line_no`` (from 1) belongs to the anchored invoice, checkable
    with ``verifier.line_proof.verify_line_proof`` and the checkpoint root on chain. Lines are
    medical detail: only the issuing hospital may fetch them here."""
    return qr.line_proof(key, _issued_by(hospital), line_no).as_json()
