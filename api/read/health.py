"""What an operator watches: the ledger's summary, readiness with its reasons, and the figures
the metrics read at scrape time (``api.adapters.metrics`` formats them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text

from api.adapters import metrics
from api.adapters.sequencer_lock import Holder
from api.db import models
from api.flows import ports
from api.settings import Settings


@dataclass(frozen=True)
class LedgerSummary:
    """The ledger and the log as ``GET /health`` shows them."""

    backend: str
    chain_id: int
    contract: str
    block_number: int
    log_size: int
    anchored_size: int


class HealthRead:
    """Liveness figures, readiness and the scrape-time metrics of the database and ledger.

    ``settings`` is read at each call (its ``ready_*`` thresholds); ``sequencer_holder``
    says who holds the sequencer lock (``api.adapters.sequencer_lock``)."""

    def __init__(
        self,
        uow: ports.UnitOfWork,
        ledger: ports.Ledger,
        settings: Settings,
        sequencer_holder: Callable[[], Holder | None],
        clock: ports.Clock = ports.utc_now,
    ) -> None:
        self._uow = uow
        self._ledger = ledger
        self._settings = settings
        self._holder = sequencer_holder
        self._clock = clock

    def summary(self) -> LedgerSummary:
        anchored = self._ledger.anchored()
        return LedgerSummary(
            backend=self._ledger.backend_name,
            chain_id=self._ledger.chain_id,
            contract=self._ledger.address,
            block_number=self._ledger.block_number(),
            log_size=self._ledger.log_size(),
            anchored_size=anchored.size if anchored else 0,
        )

    def readiness(self, sequencer_expected: bool = False) -> dict[str, Any]:
        """The checks of ``/readyz``: ``ready`` and, per check, its figure or its error.

        ``sequencer_expected``: this process runs the sequencer loop (it or another worker
        should hold the lock), so a lock that nobody holds, or whose holder stopped beating, is
        a problem.
        """
        settings = self._settings
        now = self._clock()
        out: dict[str, Any] = {"problems": []}
        try:
            with self._uow() as db:
                db.execute(text("SELECT 1"))
                oldest = db.execute(
                    select(func.min(models.Claim.updated_at)).where(
                        models.Claim.state == models.ClaimState.APPROVED
                    )
                ).scalar()
            out["database"] = "ok"
            if oldest is not None:
                waited = (now - _aware(oldest)).total_seconds()
                out["oldest_approved_claim_seconds"] = max(0.0, waited)
        except Exception as exc:  # what is wrong is the answer
            out["database"] = f"error: {type(exc).__name__}"
            out["problems"].append("database")
        try:
            out["block_number"] = self._ledger.block_number()
            anchored = self._ledger.anchored()
            out["log_size"] = self._ledger.log_size()
            out["ledger"] = "ok"
            out["anchored_size"] = anchored.size if anchored else 0
            out["anchoring_lag_leaves"] = out["log_size"] - out["anchored_size"]
            if out["anchoring_lag_leaves"] > settings.ready_max_anchoring_lag:
                out["problems"].append("anchoring_lag")
        except Exception as exc:
            out["ledger"] = f"error: {type(exc).__name__}"
            out["problems"].append("ledger")
        if out.get("oldest_approved_claim_seconds", 0) > settings.ready_max_settlement_wait_s:
            out["problems"].append("settlement_lag")
        if out["database"] == "ok" and out["ledger"] == "ok":
            try:
                stalled = self._anchoring_stalled_seconds(out["anchored_size"], now)
            except Exception as exc:
                out["database"] = f"error: {type(exc).__name__}"
                out["problems"].append("database")
            else:
                out["anchoring_stalled_seconds"] = stalled
                if stalled > settings.ready_max_anchoring_stall_s:
                    out["problems"].append("anchoring_stalled")
        if sequencer_expected:
            self._check_sequencer(now, out)
        out["ready"] = not out["problems"]
        return out

    def gauges(self) -> list[metrics.Gauge]:
        """What the database and the ledger say, for the metrics (read at scrape time)."""
        state = self.readiness()
        found: list[metrics.Gauge] = []
        for name, help_text in (
            ("log_size", "leaves in the invoice log"),
            ("anchored_size", "leaves covered by the latest checkpoint on chain"),
            ("anchoring_lag_leaves", "leaves appended but not yet anchored"),
            ("oldest_approved_claim_seconds", "age of the oldest claim waiting for settlement"),
            ("anchoring_stalled_seconds", "how long invoices waited while anchoring did not move"),
            ("block_number", "the ledger's latest block"),
        ):
            value = state.get(name)
            if value is not None:
                found.append(metrics.Gauge(name, help_text, value))
        with self._uow() as db:
            invoices = db.scalar(select(func.count()).select_from(models.Invoice)) or 0
            by_state = db.execute(
                select(models.Claim.state, func.count()).group_by(models.Claim.state)
            ).all()
            paid = db.scalar(select(func.coalesce(func.sum(models.Payment.amount_fen), 0))) or 0
        found.append(metrics.Gauge("invoices", "invoices stored", invoices))
        found.append(
            metrics.Gauge(
                "claims",
                "claims by state",
                None,
                "state",
                tuple((str(claim_state), count) for claim_state, count in by_state),
            )
        )
        found.append(metrics.Gauge("paid_fen", "payments made, in fen", paid))
        return found

    def metrics_text(self) -> bytes:
        """The Prometheus exposition: this process's (or every worker's) counters, and the
        database and ledger figures."""
        return metrics.metrics_text(self.gauges)

    def _anchoring_stalled_seconds(self, anchored_size: int, now: datetime) -> float:
        """How long invoices have waited for anchoring while it did not move (0 when nothing
        waits). Two waits count: the oldest invoice not yet in the log, from when it arrived or
        from the latest append, whichever came later (a long backlog that is being appended is
        not stalled); and the first leaf past the latest checkpoint, from its append, less the
        anchoring interval a checkpoint may wait by design."""
        outbox = models.Outbox
        with self._uow() as db:
            arrived = db.scalar(
                select(func.min(outbox.created_at)).where(outbox.appended_at.is_(None))
            )
            appended_last = db.scalar(select(func.max(outbox.appended_at)))
            appended_first_unanchored = db.scalar(
                select(outbox.appended_at)
                .join(models.Invoice, models.Invoice.invoice_id == outbox.invoice_id)
                .where(models.Invoice.leaf_index == anchored_size)
            )
        stalled = 0.0
        if arrived is not None:
            since = max(_aware(arrived), _aware(appended_last or arrived))
            stalled = (now - since).total_seconds()
        if appended_first_unanchored is not None:
            waited = (now - _aware(appended_first_unanchored)).total_seconds()
            stalled = max(stalled, waited - self._ledger.anchor_interval_ms / 1000)
        return max(0.0, stalled)

    def _check_sequencer(self, now: datetime, out: dict[str, Any]) -> None:
        """Somebody holds the sequencer lock and beat lately (any worker, any host)."""
        try:
            holder = self._holder()
        except Exception as exc:
            out["sequencer"] = f"error: {type(exc).__name__}"
            out["problems"].append("sequencer")
            return
        if holder is None:
            out["sequencer"] = "no holder"
            out["problems"].append("sequencer")
            return
        out["sequencer"] = "ok"
        out["sequencer_holder"] = holder.name
        if holder.beat_at is None:  # this database role may not see the holder's session
            return
        silent = max(0.0, (now - _aware(holder.beat_at)).total_seconds())
        out["sequencer_silent_seconds"] = silent
        if silent > self._settings.ready_max_sequencer_silence_s:
            out["sequencer"] = "silent"
            out["problems"].append("sequencer")


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
