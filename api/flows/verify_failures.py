"""Failed verifications: counted apart from genuine ones (查验次数) and limited.

A verification that finds no bill (``invoice_unknown``: an unknown bill or a wrong check code,
which nothing tells apart) is a failed attempt. Bill codes and numbers are sequential, so such
attempts are how one would guess a bill's check code; they are limited twice:

- per asker (a client's address, a signed-in citizen): a token bucket in this process,
  ``ZEROCLAIM_VERIFY_FAILURES_PER_MINUTE`` refilled, bursts of
  ``ZEROCLAIM_VERIFY_FAILURES_BURST``;
- per bill (``BILLCODE-BILLNUMBER``), for everybody: at most
  ``ZEROCLAIM_VERIFY_BILL_FAILURES_PER_HOUR`` in a clock hour, counted in the database so that
  every worker process shares the count.

Both refusals are decided from the attempts made before, never from the outcome of the one
being made, so that a refusal says nothing of whether that one would have succeeded. Staff
are neither counted nor limited.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.db import models
from api.db.queries import dialect_insert
from api.flows.verify import RateLimiter
from api.refusals import TooMany
from verifier.pipeline import Verdict

HOUR_SECONDS = 3600


class VerificationRefused(TooMany):
    """Raised when a verification is not made because its asker (``rate_limited``) or its
    bill (``bill_rate_limited``) used up its failed attempts; ``retry_after`` in seconds."""

    def __init__(self, code: str, message: str, retry_after: float) -> None:
        super().__init__(code, message, retry_after)
        self.retry_after = retry_after


def guessed_wrong(verdict: Verdict) -> bool:
    """Whether ``verdict`` is a failed attempt: it found no bill (an unknown bill or a wrong
    check code)."""
    return verdict.failed_step == "inclusion" and any(
        s.step == "inclusion" and s.code == "invoice_unknown" for s in verdict.steps
    )


class FailedAttempts:
    """The failed attempts of askers (in this process) and of bills (in the database)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        per_minute: int,
        burst: int,
        per_bill_per_hour: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._askers = RateLimiter(per_minute, burst)
        self._sessions = sessions
        self._per_bill = per_bill_per_hour
        self._clock = clock

    def admit(self, asker: str) -> None:
        """Raises ``VerificationRefused`` (``rate_limited``) when ``asker`` has no failed
        attempt left; takes nothing (:meth:`record` does, for a failure)."""
        wait = self._askers.wait(asker)
        if wait > 0:
            raise VerificationRefused(
                "rate_limited", f"too many failed verifications: retry in {wait:.0f} s", wait
            )

    def admit_bill(self, bill: str) -> None:
        """Raises ``VerificationRefused`` (``bill_rate_limited``) when ``bill`` had its hour's
        failed attempts already, whoever asks and whatever they present."""
        now = self._clock()
        hour = int(now // HOUR_SECONDS)
        with self._sessions() as db:
            failures = db.scalar(
                select(models.VerificationFailure.failures).where(
                    models.VerificationFailure.bill == bill,
                    models.VerificationFailure.hour == hour,
                )
            )
        if failures is not None and failures >= self._per_bill:
            raise _bill_refused(bill, (hour + 1) * HOUR_SECONDS - now)

    def judge(self, asker: str | None, verdict: Verdict) -> None:
        """After a verification by others than staff: refuses it when its bill used up the
        hour's failed attempts before (whatever the verdict), and counts it when it failed
        to find its bill. Raises ``VerificationRefused``."""
        if verdict.reference is None:
            return
        self.admit_bill(verdict.reference)
        if guessed_wrong(verdict):
            self.record(asker, verdict.reference)

    def record(self, asker: str | None, bill: str | None) -> None:
        """Counts one failed attempt of ``asker`` and of ``bill``. Raises
        ``VerificationRefused`` when concurrent failures took the bill's last attempt of the
        hour first: the database counts at most the limit, whatever the race."""
        if asker is not None:
            self._askers.allow(asker)
        if bill is None:
            return
        now = self._clock()
        hour = int(now // HOUR_SECONDS)
        table = models.VerificationFailure
        with self._sessions() as db:
            statement = dialect_insert(db)(table).values(
                bill=bill, hour=hour, failures=1, last_at=datetime.now(UTC)
            )
            counted = db.scalar(
                statement.on_conflict_do_update(
                    index_elements=[table.bill, table.hour],
                    set_={"failures": table.failures + 1, "last_at": statement.excluded.last_at},
                    where=table.failures < self._per_bill,
                ).returning(table.failures)
            )
            db.commit()
        if counted is None:
            raise _bill_refused(bill, (hour + 1) * HOUR_SECONDS - now)


def _bill_refused(bill: str, wait: float) -> VerificationRefused:
    return VerificationRefused(
        "bill_rate_limited",
        f"too many failed verifications of bill {bill} this hour: retry in {wait:.0f} s",
        wait,
    )
