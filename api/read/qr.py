"""An invoice as printed: its QR payload, its printable pages, and a proof of one detail line."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import select

from api.adapters import printing
from api.adapters.personal_data import PersonalData
from api.db import models
from api.db.queries import invoice_status
from api.flows import ports
from api.read.invoices import Readable, find_invoice, load_invoice, payload_of
from api.refusals import Conflict, NotFound
from chain import merkle
from verifier.canonical import Domain, detail_entries
from verifier.line_proof import LineProof
from verifier.qr import encode_payload


@dataclass(frozen=True)
class QrText:
    """The QR payload text of an invoice (``ZC1:`` + base45 of canonical CBOR)."""

    invoice_id: bytes
    text: str


@dataclass(frozen=True)
class Printable:
    """An invoice's printable pages, drawn one at a time as they are asked for."""

    pages: printing.InvoicePages

    @property
    def count(self) -> int:
        return self.pages.count

    def pdf_chunks(self) -> Iterator[bytes]:
        """The PDF of every page, page by page (a 20,000-line invoice is 400 pages)."""
        return printing.pdf_chunks(self.pages)

    def png(self) -> bytes:
        """The first page as a PNG."""
        return printing.invoice_png(self.pages)


class QrReads:
    """Invoices' QR payloads, printable forms and line proofs."""

    def __init__(
        self,
        uow: ports.UnitOfWork,
        ledger: ports.Ledger,
        domain: Domain,
        personal: PersonalData,
    ) -> None:
        self._uow = uow
        self._ledger = ledger
        self._domain = domain
        self._personal = personal

    def text(self, key: str, may_read: Readable | None = None) -> QrText:
        """The QR payload of the invoice named by ``key`` (raises as ``find_invoice``)."""
        with self._uow() as db:
            row = find_invoice(db, key, may_read)
        return QrText(row.invoice_id, encode_payload(payload_of(self._domain, row)))

    def printable(self, key: str, may_read: Readable) -> Printable:
        """The printable invoice: header, itemised table, QR code and the ledger receipt.
        Raises as ``find_invoice``, and ``Conflict`` (``patient_name_unprintable``) for a
        name stored before uploads refused names holding an ID number."""
        with self._uow() as db:
            row = find_invoice(db, key, may_read)
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
            self._personal.decrypt_text(row.patient_name_enc, "patient_name")
            if row.patient_name_enc
            else None
        )
        receipt = printing.PrintedReceipt(
            invoice_id="0x" + row.invoice_id.hex(),
            record_hash="0x" + row.record_hash.hex(),
            leaf_index=row.leaf_index,
            checkpoint_size=row.checkpoint_size,
            checkpoint_tx="0x" + tx.hex() if tx else None,
            chain_id=self._domain.chain_id,
            contract=self._domain.contract,
            status=invoice_status(row),
        )
        try:
            pages = printing.invoice_pages(
                invoice,
                hospital_row.name if hospital_row else row.hospital,
                encode_payload(payload_of(self._domain, row)),
                receipt,
                name,
            )
        except printing.IdNumberInName as exc:  # stored before uploads refused such names
            raise Conflict("patient_name_unprintable", str(exc)) from None
        return Printable(pages)

    def line_proof(self, key: str, may_read: Readable, line_no: int) -> LineProof:
        """Proof that detail line ``line_no`` (from 1) belongs to the anchored invoice.
        Raises as ``find_invoice``, ``Conflict`` (``invoice_not_anchored``) and ``NotFound``
        (``line_not_found``)."""
        with self._uow() as db:
            row = find_invoice(db, key, may_read)
            if row.leaf_index is None or row.checkpoint_size is None:
                raise Conflict("invoice_not_anchored", "the invoice is not anchored yet")
            if not 1 <= line_no <= row.line_count:
                raise NotFound("line_not_found", f"the invoice has lines 1..{row.line_count}")
            entries = detail_entries(load_invoice(db, row))
        inclusion = self._ledger.inclusion_proof(row.leaf_index, row.checkpoint_size)
        return LineProof(
            payload=encode_payload(payload_of(self._domain, row)),
            line_no=line_no,
            line_entry=entries[line_no],
            detail_size=len(entries),
            detail_proof=tuple(merkle.inclusion_proof(entries, line_no)),
            leaf_index=row.leaf_index,
            checkpoint_size=row.checkpoint_size,
            inclusion_proof=tuple(inclusion),
        )
