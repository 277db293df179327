"""Copies of demo invoices for claim tests: flagged by the smart audit (claims of it wait for
manual review), or scaled up (large enough for every payer of the chain to pay)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from api.bootstrap import Services
from api.demo import data as demo_data
from api.demo.seed import batch_items

UNKNOWN_CODE = "ZZ9999999999"  # in no catalogue: the audit's unknown_code (a block)


def upload_copy(
    services: Services,
    dataset: demo_data.DemoDataset,
    index: int,
    bill_number: str,
    *,
    flagged: bool = False,
    scale: int = 1,
    days: int = 0,
) -> str:
    """Uploads and anchors a copy of ``dataset.invoices[index]`` (same hospital and patient)
    under ``bill_number``; returns its reference BILLCODE-BILLNUMBER, which its patient claims
    with one tap. ``flagged``: its first line is billed under a code in no catalogue.
    ``scale``: every price and amount times ``scale``. ``days``: every date moved on (so that
    the copy does not repeat the original's charges on the same days)."""
    invoice = dataset.invoices[index]
    delta = timedelta(days=days)
    lines = tuple(
        replace(
            line,
            unit_price=line.unit_price * scale,
            amount=line.amount * scale,
            time=line.time + delta,
        )
        for line in invoice.lines
    )
    if flagged:
        lines = (replace(lines[0], code=UNKNOWN_CODE), *lines[1:])
    copy = replace(
        invoice,
        bill_number=bill_number,
        issued_at=invoice.issued_at + delta,
        admitted_on=invoice.admitted_on + delta if invoice.admitted_on else None,
        discharged_on=invoice.discharged_on + delta if invoice.discharged_on else None,
        total=invoice.total * scale,
        insurance_paid=invoice.insurance_paid * scale,
        patient_paid=invoice.patient_paid * scale,
        lines=lines,
    )
    one = replace(dataset, invoices=(copy,), patients=(dataset.patients[index],))
    signatures = demo_data.sign_invoices(one, services.domain)
    items = batch_items(one, signatures)[invoice.hospital]
    result = services.ingest.upload(invoice.hospital, items)
    assert not result.refusals, result.refusals
    services.anchoring.run_once(force=True)
    return f"{copy.bill_code}-{copy.bill_number}"
