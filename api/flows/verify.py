"""Online verification: the pipeline of ``verifier.pipeline`` with the service's facts.

The registry step uses the cache replayed from chain events; the inclusion step takes the
record and proof from the database and log but the checkpoint root from the chain, so a
tampered database fails it; the status step reads the claim state from the chain. Every
successful verification by others than staff is counted (查验次数), and the count is shown
with a valid verdict; failed attempts are counted apart (``api.flows.verify_failures``).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.adapters.metrics import VERIFICATIONS
from api.adapters.registry import RegistryCache
from api.db import models
from api.db.queries import chunks, dialect_insert
from api.flows import ports
from api.refusals import TooLarge
from chain.model import InvoiceLedgerState
from verifier.canonical import Domain
from verifier.codes import same_check_code
from verifier.pipeline import AnchoredRecord, Reference, Verdict, verify

if TYPE_CHECKING:
    from verifier.decode import ImageLimits


class ServiceFacts:
    """``verifier.pipeline.LedgerFacts`` over the service's database, log and chain."""

    def __init__(
        self,
        uow: ports.UnitOfWork,
        ledger: ports.Ledger,
        rows: Mapping[bytes, models.Invoice] | None = None,
        roots: dict[int, bytes] | None = None,
    ) -> None:
        self._uow = uow
        self._ledger = ledger
        self._rows = rows or {}  # rows the caller loaded already
        self._roots = {} if roots is None else roots  # anchored roots never change: cache them

    def with_rows(self, rows: Mapping[bytes, models.Invoice]) -> ServiceFacts:
        """These facts, reading the given invoice rows instead of loading them again."""
        return ServiceFacts(self._uow, self._ledger, rows, self._roots)

    def resolve_bill(self, bill_code: str, bill_number: str, check_code: str) -> bytes | None:
        """The invoice of this bill code and number (of any hospital) whose check code is
        ``check_code``. Every candidate is compared, in constant time and without regard to
        case; should two hospitals carry the same check code too, the one received first is
        the answer, so that a copy uploaded after the genuine bill cannot take its place."""
        with self._uow() as db:
            candidates = db.execute(
                select(models.Invoice.invoice_id, models.Invoice.check_code)
                .where(
                    models.Invoice.bill_code == bill_code,
                    models.Invoice.bill_number == bill_number,
                )
                .order_by(models.Invoice.received_at.desc(), models.Invoice.invoice_id.desc())
            ).all()
        found = None
        for invoice_id, stored in candidates:  # the last match is the first received
            if same_check_code(check_code, stored):
                found = invoice_id
        return found

    def anchored_record(self, invoice_id: bytes) -> AnchoredRecord | None:
        row = self._rows.get(invoice_id)
        if row is None:
            with self._uow() as db:
                row = db.get(models.Invoice, invoice_id)
        if row is None:
            return None
        proof: tuple[bytes, ...] = ()
        if row.leaf_index is not None and row.checkpoint_size is not None:
            proof = tuple(self._ledger.inclusion_proof(row.leaf_index, row.checkpoint_size))
        return AnchoredRecord(
            bill_code=row.bill_code,
            bill_number=row.bill_number,
            check_code=row.check_code,
            hospital=row.hospital,
            issued_at=row.issued_at,
            total=row.total,
            patient_commitment=row.patient_commitment,
            detail_root=row.detail_root,
            record_hash=row.record_hash,
            leaf_index=row.leaf_index,
            checkpoint_size=row.checkpoint_size,
            proof=proof,
        )

    def checkpoint_root(self, size: int) -> bytes | None:
        root = self._roots.get(size)
        if root is None:
            checkpoint = self._ledger.checkpoint(size)
            if checkpoint is None:
                return None
            root = self._roots[size] = checkpoint.root
        return root

    def claim_state(self, invoice_id: bytes) -> InvoiceLedgerState:
        return self._ledger.claim_state(invoice_id)


def photo_reader(
    limits: ImageLimits | None = None, at_once: int | None = None
) -> Callable[[bytes], list[str]]:
    """Phone photos to QR texts: zxing-cpp first, pyzbar as fallback, over a ladder of
    clean-ups (``verifier.decode``); a photo over ``limits`` is refused from its header.

    At most ``at_once`` photos (default: one per core) are decoded at the same moment, the
    others wait their turn: decoding is CPU-bound, so more at once gains nothing, while each
    one holds up to the decoded-size limit in memory; the server's thread pool would otherwise
    run forty."""
    from verifier.decode import PhotoDecoder

    decoder = PhotoDecoder(limits=limits)
    gate = threading.BoundedSemaphore(at_once or os.cpu_count() or 1)

    def read(data: bytes) -> list[str]:
        with gate:
            return list(decoder.decode_bytes(data).texts)

    return read


def refuse_oversized_photo(data: bytes, limits: ImageLimits) -> None:
    """Raises ``TooLarge`` (``image_too_many_pixels``, ``image_side_too_long`` or
    ``image_too_many_bytes``) when the photo's header claims more than ``limits``, before a
    pixel is decoded; other bytes pass: the verification reads them and says what is wrong."""
    from verifier.decode import ImageTooLarge, open_photo
    from verifier.qr import QrImageUnreadable

    try:
        open_photo(data, limits)
    except ImageTooLarge as exc:
        raise TooLarge(exc.code, exc.reason, **exc.details()) from None
    except QrImageUnreadable:
        pass


class FailureGate(Protocol):
    """What the verification asks of the failed-attempt limits
    (``api.flows.verify_failures.FailedAttempts``); both raise its ``VerificationRefused``."""

    def admit(self, asker: str) -> None: ...
    def judge(self, asker: str | None, verdict: Verdict) -> None: ...


class VerifyFlow:
    """Verifies QR texts, photos and typed references; counts successful verifications per
    invoice, and failed attempts apart (``failures``)."""

    def __init__(
        self,
        uow: ports.UnitOfWork,
        ledger: ports.Ledger,
        registry: RegistryCache,
        domain: Domain,
        failures: FailureGate,
        read_image: Callable[[bytes], list[str]],
        clock: ports.Clock = ports.utc_now,
    ) -> None:
        self._uow = uow
        self._registry = registry
        self._domain = domain
        self._facts = ServiceFacts(uow, ledger)
        self._read_image = read_image
        self._clock = clock
        self.failures = failures

    def verify(
        self, source: bytes | str | Reference, *, asker: str | None = None, staff: bool = False
    ) -> tuple[Verdict, int | None]:
        """The verdict and the invoice's count of successful verifications (查验次数), given
        with a valid verdict only (None otherwise).

        A valid verdict adds one to the count unless ``staff`` asked. A failed attempt (no bill
        found: an unknown bill or a wrong check code) is counted apart, against ``asker`` (a
        client's address, a citizen) and the bill; raises ``VerificationRefused`` when either
        has used up its failed attempts (``api.flows.verify_failures``). Staff are neither
        counted nor limited."""
        if not staff and asker is not None:
            self.failures.admit(asker)
        self._registry.refresh()
        verdict = verify(
            source,
            judge=self._registry,
            facts=self._facts,
            domain=self._domain,
            read_image=self._read_image,
        )
        VERIFICATIONS.labels(_outcome(verdict)).inc()
        if not staff:
            self.failures.judge(asker, verdict)
        if not verdict.valid or verdict.invoice_id is None:
            return verdict, None
        if staff:
            with self._uow() as db:
                return verdict, self.counts_of(db, [verdict.invoice_id])[verdict.invoice_id]
        return verdict, self._count(verdict.invoice_id)

    def verify_many(
        self, sources: Sequence[bytes | str], rows: Mapping[bytes, models.Invoice]
    ) -> list[Verdict]:
        """The verdicts of several sources, reading the invoice ``rows`` the caller loaded;
        not counted: the caller counts them with :meth:`add_counts` in its own transaction."""
        self._registry.refresh()
        facts = self._facts.with_rows(rows)
        verdicts = [
            verify(
                source,
                judge=self._registry,
                facts=facts,
                domain=self._domain,
                read_image=self._read_image,
            )
            for source in sources
        ]
        for verdict in verdicts:
            VERIFICATIONS.labels(_outcome(verdict)).inc()
        return verdicts

    @staticmethod
    def add_counts(db: Session, added: Mapping[bytes, int], now: datetime) -> None:
        """Adds ``added[invoice_id]`` verifications to each invoice's count, in ``db``'s
        transaction (the caller commits)."""
        if not added:
            return
        statement = dialect_insert(db)(models.Verification)
        db.execute(
            statement.on_conflict_do_update(
                index_elements=[models.Verification.invoice_id],
                set_={
                    "count": models.Verification.count + statement.excluded.count,
                    "last_at": statement.excluded.last_at,
                },
            ),
            [{"invoice_id": iid, "count": n, "last_at": now} for iid, n in sorted(added.items())],
        )

    @staticmethod
    def counts_of(db: Session, invoice_ids: Iterable[bytes]) -> dict[bytes, int]:
        """How many times each of ``invoice_ids`` has been verified (0 when never)."""
        wanted = sorted(set(invoice_ids))
        counts = dict.fromkeys(wanted, 0)
        for chunk in chunks(wanted):
            found = db.execute(
                select(models.Verification.invoice_id, models.Verification.count).where(
                    models.Verification.invoice_id.in_(chunk)
                )
            )
            counts.update({invoice_id: count for invoice_id, count in found})
        return counts

    def _count(self, invoice_id: bytes) -> int:
        now = self._clock()
        with self._uow() as db:
            statement = dialect_insert(db)(models.Verification).values(
                invoice_id=invoice_id, count=1, last_at=now
            )
            count = db.scalar(
                statement.on_conflict_do_update(
                    index_elements=[models.Verification.invoice_id],
                    set_={"count": models.Verification.count + 1, "last_at": now},
                ).returning(models.Verification.count)
            )
            db.commit()
            return int(count or 0)


def _outcome(verdict: Verdict) -> str:
    return "valid" if verdict.valid else f"failed_{verdict.failed_step}"


#: Fewest remembered clients at which a rate limiter sweeps out the full buckets.
_SWEEP_MIN = 1024


class RateLimiter:
    """A token bucket per client: ``per_minute`` requests, bursts up to ``burst``."""

    def __init__(
        self, per_minute: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = per_minute / 60.0
        self._burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()
        self._sweep_at = _SWEEP_MIN  # bucket count that triggers the next sweep

    def wait(self, client: str) -> float:
        """0 when a request of ``client`` may go ahead now, else the seconds to wait; takes
        nothing (:meth:`allow` does)."""
        with self._lock:
            now = self._clock()
            tokens, at = self._buckets.get(client, (self._burst, now))
            tokens = min(self._burst, tokens + (now - at) * self._rate)
            return 0.0 if tokens >= 1 else (1 - tokens) / self._rate

    def allow(self, client: str) -> float:
        """0 when the request may go ahead, else the seconds to wait."""
        with self._lock:
            now = self._clock()
            tokens, at = self._buckets.get(client, (self._burst, now))
            tokens = min(self._burst, tokens + (now - at) * self._rate)
            if tokens >= 1:
                self._buckets[client] = (tokens - 1, now)
                wait = 0.0
            else:
                self._buckets[client] = (tokens, now)
                wait = (1 - tokens) / self._rate
            if len(self._buckets) >= self._sweep_at:
                self._sweep(now)
            return wait

    def tracked(self) -> int:
        """How many clients are remembered (those whose bucket is not full again)."""
        with self._lock:
            return len(self._buckets)

    def _sweep(self, now: float) -> None:
        """Forgets the buckets that have filled up again (the same as never seen), so that a
        stream of new clients cannot grow memory without bound; the next sweep waits until
        the count has doubled, so sweeping costs O(1) a request amortised."""
        self._buckets = {
            client: (tokens, at)
            for client, (tokens, at) in self._buckets.items()
            if tokens + (now - at) * self._rate < self._burst
        }
        self._sweep_at = max(_SWEEP_MIN, 2 * len(self._buckets))
