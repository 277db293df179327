"""The write path: a hospital's batch in, receipts and per-invoice refusals out.

Each invoice is parsed and validated, its detail root and record hash computed, and its
signature recovered (coincurve, ~0.1 ms) and judged against the registry cache at the
invoice's issue time; a key whose revocation is recorded is refused whatever the issue time,
and an issue time older than the configured window (``max_issue_age``) is refused. That
work is pure and runs on every core for large batches. The good
invoices are then stored with their lines and an outbox row in ONE database transaction: a
batch with bad invoices stores the good ones, reports each bad one, and never leaves half an
invoice. The same invoice uploaded again returns its first receipt; the same identity with
different content is a conflict and changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.adapters.metrics import UPLOADED
from api.adapters.personal_data import PersonalData
from api.adapters.registry import RegistryCache
from api.adapters.workers import WorkerPool
from api.db import models
from api.db.queries import chunks
from api.flows import ports
from api.identity.staff import record
from api.refusals import Conflict, Forbidden, Invalid, Refused
from verifier.canonical import (
    Domain,
    SignatureInvalid,
    SignedFields,
    detail_root,
    patient_commitment,
    recover_signer,
    signing_digest,
)
from verifier.invoice import (
    ID_NUMBER_LIKE,
    Invoice,
    InvoiceInvalid,
    Problem,
    parse_invoice,
    text_problem,
)

#: Batches at least this large are prepared in worker processes.
PARALLEL_THRESHOLD = 256
CHUNK = 200
#: Longest patient ID number (an 18-character resident ID, or a passport's number) and name.
MAX_ID_NUMBER = 32
MAX_PATIENT_NAME = 100


@dataclass(frozen=True)
class Refusal:
    """Why one invoice of a batch was not accepted."""

    index: int
    reference: str
    code: str  # invalid_invoice, bad_signature, unknown_signer, wrong_hospital, ...
    problems: tuple[Problem, ...]
    kind: type[Refused] = Invalid  # Conflict for a duplicate, Forbidden for another's invoice

    def as_refused(self) -> Refused:
        """This refusal as the domain's refusal of its kind (the first problem its message)."""
        return self.kind(self.code, self.problems[0].reason if self.problems else self.code)

    def as_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "reference": self.reference,
            "code": self.code,
            "problems": [{"path": p.path, "reason": p.reason} for p in self.problems],
        }


@dataclass(frozen=True)
class Receipt:
    """What the service acknowledges for an accepted invoice (the same on every re-upload)."""

    invoice_id: bytes
    reference: str
    record_hash: bytes
    received_at: datetime
    batch_id: str
    leaf_index: int | None
    checkpoint_size: int | None
    duplicate: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "invoice_id": "0x" + self.invoice_id.hex(),
            "reference": self.reference,
            "record_hash": "0x" + self.record_hash.hex(),
            "received_at": self.received_at.isoformat(),
            "batch_id": self.batch_id,
            "status": "anchored" if self.checkpoint_size else "pending",
            "leaf_index": self.leaf_index,
            "checkpoint_size": self.checkpoint_size,
            "duplicate": self.duplicate,
        }


@dataclass
class BatchResult:
    batch_id: str
    receipts: list[tuple[int, Receipt]] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A verified invoice flattened for storage: plain values only, so that it crosses from
    a worker process cheaply (pickling the Invoice dataclasses costs more than parsing)."""

    index: int
    reference: str
    invoice_id: bytes
    hospital: str
    issued_at: datetime
    record_hash: bytes
    signature: bytes
    signer: str
    patient: Mapping[str, str] | None
    header: dict[str, Any]
    lines: list[tuple[Any, ...]]


def _offset_minutes(moment: datetime) -> int:
    offset = moment.utcoffset()
    assert offset is not None  # parse_invoice refuses naive times
    return int(offset.total_seconds()) // 60


def _flatten(
    index: int,
    invoice: Invoice,
    fields: SignedFields,
    record_hash: bytes,
    signature: bytes,
    signer: str,
    patient: Mapping[str, str] | None,
) -> _Prepared:
    header = {
        "bill_code": invoice.bill_code,
        "bill_number": invoice.bill_number,
        "check_code": invoice.check_code,
        "hospital": invoice.hospital,
        "issued_at": invoice.issued_at,
        "issued_utc_offset_minutes": _offset_minutes(invoice.issued_at),
        "visit_type": invoice.visit_type.value,
        "admitted_on": invoice.admitted_on,
        "discharged_on": invoice.discharged_on,
        "department": invoice.department,
        "diagnoses": list(invoice.diagnoses),
        "total": invoice.total,
        "insurance_paid": invoice.insurance_paid,
        "patient_paid": invoice.patient_paid,
        "line_count": len(invoice.lines),
        "patient_commitment": invoice.patient_commitment,
        "detail_root": fields.detail_root,
    }
    lines = []
    for n, ln in enumerate(invoice.lines, start=1):
        offset = ln.time.utcoffset()
        assert offset is not None  # parse_invoice refuses naive times
        lines.append(
            (
                n,
                ln.code,
                ln.name,
                ln.item_class.value,
                ln.unit_price,
                ln.quantity_milli,
                ln.amount,
                ln.department,
                int(ln.time.timestamp()),
                int(offset.total_seconds()) // 60,
            )
        )
    return _Prepared(
        index,
        invoice.reference,
        fields.invoice_id,
        invoice.hospital,
        invoice.issued_at,
        record_hash,
        signature,
        signer,
        patient,
        header,
        lines,
    )


def _refuse(
    index: int,
    reference: str,
    code: str,
    path: str,
    reason: str,
    kind: type[Refused] = Invalid,
) -> Refusal:
    return Refusal(index, reference, code, (Problem(path, reason),), kind)


def _prepare_one(
    index: int, item: Any, domain: Domain, received_at: datetime
) -> _Prepared | Refusal:
    if not isinstance(item, Mapping):
        return _refuse(
            index,
            "?",
            "invalid_item",
            "$",
            "each item is an object with 'invoice', 'signature' and optionally 'patient'",
        )
    try:
        invoice = parse_invoice(item.get("invoice"), received_at)  # type: ignore[arg-type]
    except InvoiceInvalid as exc:
        return Refusal(index, exc.reference, "invalid_invoice", exc.problems)
    reference = invoice.reference
    signature_hex = item.get("signature")
    try:
        signature = bytes.fromhex(signature_hex.removeprefix("0x"))  # type: ignore[union-attr]
    except (AttributeError, ValueError):
        return _refuse(
            index, reference, "bad_signature", "signature", "must be the hex of a 65-byte signature"
        )
    fields = SignedFields.of(invoice, detail_root(invoice))
    record_hash = fields.record_hash()
    try:
        signer = recover_signer(signing_digest(domain, record_hash), signature)
    except SignatureInvalid as exc:
        return _refuse(index, reference, "bad_signature", "signature", str(exc))
    patient = item.get("patient")
    if patient is not None:
        problem = _check_patient(patient, invoice)
        if problem is not None:
            return _refuse(index, reference, *problem)
    return _flatten(index, invoice, fields, record_hash, signature, signer, patient)


def _check_patient(patient: Any, invoice: Invoice) -> tuple[str, str, str] | None:
    """Why the patient data cannot be kept: (code, path, reason), or None."""
    if not isinstance(patient, Mapping) or not all(
        isinstance(patient.get(k), str) for k in ("id_number", "name", "salt")
    ):
        return (
            "invalid_patient",
            "patient",
            "needs 'id_number', 'name' and 'salt' (hex) as strings",
        )
    for key, longest in (("id_number", MAX_ID_NUMBER), ("name", MAX_PATIENT_NAME)):
        if len(patient[key]) > longest:
            return ("invalid_patient", f"patient.{key}", f"is longer than {longest} characters")
        if (problem := text_problem(patient[key])) is not None:
            return ("invalid_patient", f"patient.{key}", problem)
    if ID_NUMBER_LIKE.search(patient["name"]):
        # The name is printed on the invoice, an ID number never is (the value is not
        # repeated: it is personal data).
        return ("invalid_patient", "patient.name", "contains an ID number; send the name alone")
    try:
        salt = bytes.fromhex(patient["salt"].removeprefix("0x"))
        expected = patient_commitment(patient["id_number"], salt)
    except ValueError as exc:
        return ("patient_mismatch", "patient.salt", str(exc))
    if expected != invoice.patient_commitment:
        return (
            "patient_mismatch",
            "invoice.patient_commitment",
            "does not commit to the patient given",
        )
    return None


def _prepare_chunk(
    start: int, items: Sequence[Any], chain_id: int, contract: str, received_at: datetime
) -> list[_Prepared | Refusal]:
    domain = Domain(chain_id, contract)
    return [_prepare_one(start + i, item, domain, received_at) for i, item in enumerate(items)]


class IngestService:
    """Accepts hospital batches into the database and the outbox."""

    def __init__(
        self,
        uow: ports.UnitOfWork,
        registry: RegistryCache,
        domain: Domain,
        personal: PersonalData,
        workers: int | None = None,
        max_issue_age: timedelta | None = None,
        clock: ports.Clock = lambda: datetime.now(UTC),
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._registry = registry
        self._max_issue_age = max_issue_age  # None: no bound (development)
        self._domain = domain
        self.personal = personal
        self._pool = WorkerPool(workers)

    def close(self) -> None:
        self._pool.close()

    def prepare(
        self, items: Sequence[Any], received_at: datetime | None = None
    ) -> list[_Prepared | Refusal]:
        """Validates and recovers signatures, in worker processes for large batches; times
        in the future of ``received_at`` (now by default) are refused."""
        received_at = received_at or self._clock()
        chain_id, contract = self._domain.chain_id, self._domain.contract
        if len(items) < PARALLEL_THRESHOLD or self._pool.size < 2:
            return _prepare_chunk(0, items, chain_id, contract, received_at)
        futures = [
            self._pool.submit(
                _prepare_chunk, start, items[start : start + CHUNK], chain_id, contract, received_at
            )
            for start in range(0, len(items), CHUNK)
        ]
        return [p for f in futures for p in f.result()]

    def upload(self, hospital: str, items: Sequence[Any]) -> BatchResult:
        """Stores the good invoices of a batch uploaded by ``hospital`` (its API key's)."""
        result = BatchResult(str(uuid.uuid4()))
        self._registry.refresh()
        accepted: list[_Prepared] = []
        seen: dict[bytes, int] = {}
        for prepared in self.prepare(items):
            if isinstance(prepared, Refusal):
                result.refusals.append(prepared)
                continue
            refusal = self._judge(hospital, prepared)
            if refusal is None and prepared.invoice_id in seen:
                refusal = _refuse(
                    prepared.index,
                    prepared.reference,
                    "duplicate_in_batch",
                    "invoice",
                    f"same bill code and number as item {seen[prepared.invoice_id]}",
                    Conflict,
                )
            if refusal is not None:
                result.refusals.append(refusal)
                continue
            seen[prepared.invoice_id] = prepared.index
            accepted.append(prepared)
        if accepted:
            self._store(hospital, result, accepted)
        result.receipts.sort(key=lambda pair: pair[0])
        result.refusals.sort(key=lambda r: r.index)
        UPLOADED.labels("stored").inc(len(result.receipts))
        UPLOADED.labels("refused").inc(len(result.refusals))
        return result

    def _judge(self, hospital: str, p: _Prepared) -> Refusal | None:
        if p.hospital != hospital:
            return _refuse(
                p.index,
                p.reference,
                "wrong_hospital",
                "invoice.hospital",
                f"{p.hospital} is not the uploading hospital {hospital}",
                Forbidden,
            )
        # A key whose revocation is recorded signs nothing new, whatever the issue time it
        # writes: what is uploaded now is anchored after the revocation (a thief backdates).
        revoked_log_size = self._registry.revoked_log_size(p.hospital, p.signer)
        if revoked_log_size is not None:
            return _refuse(
                p.index,
                p.reference,
                "key_revoked",
                "signature",
                f"key {p.signer} of hospital {p.hospital} was revoked (recorded when the log held "
                f"{revoked_log_size} invoices): invoices it signs are no longer accepted",
            )
        if self._max_issue_age is not None:
            oldest = self._clock() - self._max_issue_age
            if p.issued_at < oldest:
                return _refuse(
                    p.index,
                    p.reference,
                    "issued_too_long_ago",
                    "invoice.issued_at",
                    f"issued more than {self._max_issue_age.days} days before its upload "
                    f"(oldest accepted now: {oldest.replace(microsecond=0).isoformat()})",
                )
        reason = self._registry.judge(p.hospital, p.signer, p.issued_at)
        if reason is not None:
            return _refuse(p.index, p.reference, "signer_not_valid", "signature", reason)
        return None

    def _store(self, hospital: str, result: BatchResult, accepted: list[_Prepared]) -> None:
        now = self._clock()
        with self._uow() as session:
            existing = self._existing(session, [p.invoice_id for p in accepted])
            new = []
            for p in accepted:
                row = existing.get(p.invoice_id)
                if row is None:
                    new.append(p)
                elif row.record_hash == p.record_hash:
                    result.receipts.append((p.index, receipt_of(row, duplicate=True)))
                else:
                    result.refusals.append(
                        _refuse(
                            p.index,
                            p.reference,
                            "conflict",
                            "invoice",
                            "an invoice with this bill code and number was accepted earlier with "
                            "different content",
                            Conflict,
                        )
                    )
            try:
                self._insert(session, new, result.batch_id, now)
                if new:
                    record(
                        session,
                        f"hospital:{hospital}",
                        "invoices_stored",
                        result.batch_id,
                        invoices=[p.reference for p in new],
                    )
                session.commit()
            except IntegrityError:
                # A concurrent upload of one of these invoices won the race: redo it one by
                # one so that each gets its own answer.
                session.rollback()
                for p in new:
                    self._store(hospital, result, [p])
                return
        result.receipts.extend(
            (
                p.index,
                Receipt(
                    p.invoice_id,
                    p.reference,
                    p.record_hash,
                    now,
                    result.batch_id,
                    None,
                    None,
                ),
            )
            for p in new
        )

    @staticmethod
    def _existing(session: Session, ids: list[bytes]) -> dict[bytes, models.Invoice]:
        found: dict[bytes, models.Invoice] = {}
        for chunk in chunks(ids):
            rows = session.scalars(
                select(models.Invoice).where(models.Invoice.invoice_id.in_(chunk))
            )
            found.update((row.invoice_id, row) for row in rows)
        return found

    def _insert(self, session: Session, new: list[_Prepared], batch_id: str, now: datetime) -> None:
        if not new:
            return
        personal = self.personal
        invoices: list[dict[str, Any]] = []
        for p in new:
            patient = p.patient
            invoices.append(
                {
                    **p.header,
                    "invoice_id": p.invoice_id,
                    "patient_id_hash": personal.id_number_hash(patient["id_number"])
                    if patient
                    else None,
                    "patient_name_enc": personal.encrypt_text(patient["name"], "patient_name")
                    if patient
                    else None,
                    "patient_salt_enc": personal.encrypt(
                        bytes.fromhex(patient["salt"].removeprefix("0x")), "patient_salt"
                    )
                    if patient
                    else None,
                    "record_hash": p.record_hash,
                    "signature": p.signature,
                    "signer": p.signer,
                    "received_at": now,
                    "batch_id": batch_id,
                }
            )
        session.execute(insert(models.Invoice), invoices)
        # A million lines: straight to the driver, plain values, no per-row ORM work.
        connection = session.connection()
        mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
        columns = (
            "invoice_id",
            "line_no",
            "code",
            "name",
            "item_class",
            "unit_price",
            "quantity_milli",
            "amount",
            "department",
            "at_epoch",
            "utc_offset_minutes",
        )
        connection.exec_driver_sql(
            f"INSERT INTO invoice_lines ({', '.join(columns)}) "
            f"VALUES ({', '.join([mark] * len(columns))})",
            [(p.invoice_id, *line) for p in new for line in p.lines],
        )
        session.execute(
            insert(models.Outbox), [{"invoice_id": p.invoice_id, "created_at": now} for p in new]
        )


def csv_items(text: str) -> list[dict[str, Any]]:
    """The items of a CSV batch (docs/invoice-format.md), one per row. Raises ``Invalid``
    (``invalid_csv``) when the file cannot be read or holds no item or more than 5,000."""
    from api.adapters.hospital_files import read_csv_batch

    try:
        items = read_csv_batch(text)
    except (ValueError, KeyError) as exc:
        raise Invalid("invalid_csv", f"the CSV cannot be read: {exc}") from None
    if not items or len(items) > 5000:
        raise Invalid("invalid_csv", "a CSV batch holds 1 to 5,000 invoices")
    return items


def receipt_of(row: models.Invoice, duplicate: bool = False) -> Receipt:
    return Receipt(
        row.invoice_id,
        f"{row.bill_code}-{row.bill_number}",
        row.record_hash,
        row.received_at,
        row.batch_id,
        row.leaf_index,
        row.checkpoint_size,
        duplicate,
    )
