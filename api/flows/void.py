"""Red-letter reversal (红冲): a hospital voids one of its anchored invoices.

The hospital signs ``VoidInvoice(invoiceId, redInvoiceId)`` (EIP-712) and the service relays
it to the ledger with the invoice's inclusion proof; the contract refuses it once anything was
paid on the invoice. The database then records the void and the audit log who asked.
"""

from __future__ import annotations

from api.db import models
from api.db.queries import leaf_of
from api.flows import ports
from api.identity.staff import record
from api.read.invoices import InvoiceReads, InvoiceView, find_invoice
from api.refusals import Conflict


class VoidFlow:
    """Voids a hospital's invoice on chain, then in the database."""

    def __init__(
        self,
        uow: ports.UnitOfWork,
        ledger: ports.Ledger,
        invoices: InvoiceReads,
        clock: ports.Clock = ports.utc_now,
    ) -> None:
        self._uow = uow
        self._ledger = ledger
        self._invoices = invoices
        self._clock = clock

    def void(self, hospital: str, key: str, red_invoice_id: str, signature: str) -> InvoiceView:
        """Voids the invoice named by ``key`` (``hospital``'s own; another hospital's does not
        exist for it) with the red-letter invoice ``red_invoice_id`` (0x + 64 hex digits, kept
        as given in the audit log) and the hospital's ``signature`` (0x + 130 hex digits);
        returns the voided invoice as its hospital reads it now.

        Raises ``NotFound`` (``invoice_not_found``) and the other refusals of
        ``api.read.invoices.find_invoice``; ``Conflict`` (``invoice_voided``,
        ``invoice_not_anchored``); and the ledger's errors (``InvoiceVoided``,
        ``InvoiceAlreadyPaid``, ``InvalidVoidSignature``...)."""
        with self._uow() as db:
            row = find_invoice(db, key, lambda r: r.hospital == hospital)
        if row.voided_by is not None:
            raise Conflict("invoice_voided", "the invoice is voided already")
        if row.leaf_index is None:
            raise Conflict("invoice_not_anchored", "the invoice is not anchored yet; retry soon")
        red = bytes.fromhex(red_invoice_id[2:])
        self._ledger.void(leaf_of(row), row.leaf_index, red, bytes.fromhex(signature[2:]))
        with self._uow() as db:
            stored = db.get(models.Invoice, row.invoice_id)
            assert stored is not None
            stored.voided_by = red
            stored.voided_at = self._clock()
            record(
                db,
                f"hospital:{hospital}",
                "invoice_voided",
                f"{row.bill_code}-{row.bill_number}",
                red_invoice_id=red_invoice_id,
            )
            db.commit()
        return self._invoices.view("0x" + row.invoice_id.hex(), lambda r: r.hospital == hospital)
