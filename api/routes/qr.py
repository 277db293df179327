"""An invoice's QR fingerprint: the payload text, and the code as PNG or SVG."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel

from api.db import models
from api.deps import ServicesDep
from api.routes.invoices import find_invoice
from api.services import Services
from verifier.qr import VERSION, QrPayload, encode_payload, qr_png, qr_svg

router = APIRouter(prefix="/invoices", tags=["qr"])


def payload_of(services: Services, row: models.Invoice) -> QrPayload:
    """The self-verifying payload of a stored invoice (docs/qr-format.md)."""
    return QrPayload(
        version=VERSION,
        chain_id=services.domain.chain_id,
        contract=services.domain.contract,
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


class QrText(BaseModel):
    invoice_id: str
    payload: str
    length: int


@router.get("/{key}/qr", response_model=QrText)
def qr_text(services: ServicesDep, key: str) -> QrText:
    """The QR payload text (``ZC1:`` + base45 of canonical CBOR)."""
    row = find_invoice(services, key)
    text = encode_payload(payload_of(services, row))
    return QrText(invoice_id="0x" + row.invoice_id.hex(), payload=text, length=len(text))


@router.get(
    "/{key}/qr.png", response_class=Response, responses={200: {"content": {"image/png": {}}}}
)
def qr_image_png(
    services: ServicesDep, key: str, scale: Annotated[int, Query(ge=1, le=20)] = 4
) -> Response:
    text = encode_payload(payload_of(services, find_invoice(services, key)))
    return Response(qr_png(text, scale=scale), media_type="image/png")


@router.get(
    "/{key}/qr.svg", response_class=Response, responses={200: {"content": {"image/svg+xml": {}}}}
)
def qr_image_svg(
    services: ServicesDep, key: str, scale: Annotated[int, Query(ge=1, le=20)] = 4
) -> Response:
    text = encode_payload(payload_of(services, find_invoice(services, key)))
    return Response(qr_svg(text, scale=scale), media_type="image/svg+xml")
