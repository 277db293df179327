"""The write path: a hospital's batch in, receipts and per-invoice refusals out.

Each invoice is parsed and validated, its detail root and record hash computed, and its
signature recovered (coincurve, ~0.1 ms) and judged against the registry cache at the
invoice's issue time; a key whose revocation is recorded is refused whatever the issue time,
and an issue time older than the configured window (``max_issue_age``) is refused. The
per-item work is pure (``api.flows.upload_items``) and runs on every core for large batches.
The good
invoices are then stored with their lines and an outbox row in ONE database transaction: a
batch with bad invoices stores the good ones, reports each bad one, and never leaves half an
invoice. The same invoice uploaded again returns its first receipt; the same identity with
different content is a conflict and changes nothing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
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
from api.flows.upload_items import (
    LINE_COLUMNS,
    PATIENT_DETAILS,
    Prepared,
    Refusal,
    prepare_chunk,
    refuse,
)
from api.identity.staff import record
from api.refusals import Conflict, Forbidden
from verifier.canonical import Domain

#: Batches at least this large are prepared in worker processes.
PARALLEL_THRESHOLD = 256
CHUNK = 200


@dataclass(frozen=True)
class UploadReceipt:
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
    receipts: list[tuple[int, UploadReceipt]] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)


class UploadFlow:
    """Accepts hospital batches into the database and the outbox."""

    def __init__(
        self,
        uow: ports.UnitOfWork,
        registry: RegistryCache,
        domain: Domain,
        personal: PersonalData,
        workers: int | None = None,
        max_issue_age: timedelta | None = None,
        clock: ports.Clock = ports.utc_now,
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
    ) -> list[Prepared | Refusal]:
        """Validates and recovers signatures, in worker processes for large batches; times
        in the future of ``received_at`` (now by default) are refused."""
        received_at = received_at or self._clock()
        chain_id, contract = self._domain.chain_id, self._domain.contract
        if len(items) < PARALLEL_THRESHOLD or self._pool.size < 2:
            return prepare_chunk(0, items, chain_id, contract, received_at)
        futures = [
            self._pool.submit(
                prepare_chunk, start, items[start : start + CHUNK], chain_id, contract, received_at
            )
            for start in range(0, len(items), CHUNK)
        ]
        return [p for f in futures for p in f.result()]

    def upload(self, hospital: str, items: Sequence[Any]) -> BatchResult:
        """Stores the good invoices of a batch uploaded by ``hospital`` (its API key's)."""
        result = BatchResult(str(uuid.uuid4()))
        self._registry.refresh()
        accepted: list[Prepared] = []
        seen: dict[bytes, int] = {}
        for prepared in self.prepare(items):
            if isinstance(prepared, Refusal):
                result.refusals.append(prepared)
                continue
            refusal = self._judge(hospital, prepared)
            if refusal is None and prepared.invoice_id in seen:
                refusal = refuse(
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

    def _judge(self, hospital: str, p: Prepared) -> Refusal | None:
        if p.hospital != hospital:
            return refuse(
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
            return refuse(
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
                return refuse(
                    p.index,
                    p.reference,
                    "issued_too_long_ago",
                    "invoice.issued_at",
                    f"issued more than {self._max_issue_age.days} days before its upload "
                    f"(oldest accepted now: {oldest.replace(microsecond=0).isoformat()})",
                )
        reason = self._registry.judge(p.hospital, p.signer, p.issued_at)
        if reason is not None:
            return refuse(p.index, p.reference, "signer_not_valid", "signature", reason)
        return None

    def _store(self, hospital: str, result: BatchResult, accepted: list[Prepared]) -> None:
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
                        refuse(
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
                UploadReceipt(
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

    def _insert(self, session: Session, new: list[Prepared], batch_id: str, now: datetime) -> None:
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
                    "patient_details_enc": _details(personal, patient),
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
        columns = ("invoice_id", *LINE_COLUMNS)
        connection.exec_driver_sql(
            f"INSERT INTO invoice_lines ({', '.join(columns)}) "
            f"VALUES ({', '.join([mark] * len(columns))})",
            [(p.invoice_id, *line) for p in new for line in p.lines],
        )
        session.execute(
            insert(models.Outbox), [{"invoice_id": p.invoice_id, "created_at": now} for p in new]
        )


def receipt_of(row: models.Invoice, duplicate: bool = False) -> UploadReceipt:
    return UploadReceipt(
        row.invoice_id,
        f"{row.bill_code}-{row.bill_number}",
        row.record_hash,
        row.received_at,
        row.batch_id,
        row.leaf_index,
        row.checkpoint_size,
        duplicate,
    )


def _details(personal: PersonalData, patient: Mapping[str, str] | None) -> bytes | None:
    """The patient's insurance number, sex and age, when given, as one encrypted JSON."""
    found = {k: patient[k] for k in PATIENT_DETAILS if patient and patient.get(k) is not None}
    if not found:
        return None
    return personal.encrypt_text(json.dumps(found, ensure_ascii=False), "patient_details")
