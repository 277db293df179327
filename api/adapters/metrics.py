"""Logs, metrics and readiness: what an operator watches.

Logs are JSON lines, one per request and one per event worth telling, each with the request id
(taken from a well-formed ``X-Request-ID`` or made here, and sent back in the response). They
carry routes as templates (``/api/v1/claims/{claim_id}``), never query strings or bodies, so no
personal data reaches them: ID numbers and names only ever travel in bodies.

Metrics are Prometheus text at ``/metrics``. Counters and histograms of this process (requests,
uploads, verifications by outcome, settlement batches and gas) use prometheus_client's
multi-process mode when ``PROMETHEUS_MULTIPROC_DIR`` is set, as it must be with several uvicorn
workers; what the database and the ledger say (claims by state, invoices, log and anchoring
lag, oldest approved claim) is read at scrape time, so every worker answers the same.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select, text
from starlette.requests import Request
from starlette.responses import Response

from api.adapters.sequencer_lock import SequencerLock
from api.db import models

if TYPE_CHECKING:
    from api.bootstrap import Services

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_GOOD_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

HTTP_REQUESTS = Counter(
    "zeroclaim_http_requests", "HTTP requests by route template and status", ["route", "status"]
)
HTTP_SECONDS = Histogram(
    "zeroclaim_http_request_seconds",
    "HTTP request duration by route template",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
UPLOADED = Counter("zeroclaim_invoices_uploaded", "invoices in uploads by outcome", ["outcome"])
VERIFICATIONS = Counter(
    "zeroclaim_verifications", "verifications by outcome (valid, or the failed step)", ["outcome"]
)
CLAIMS_SUBMITTED = Counter(
    "zeroclaim_claims_submitted",
    "claims submitted by outcome (state, or refusal code)",
    ["outcome"],
)
SETTLEMENT_BATCH = Histogram(
    "zeroclaim_settlement_batch_size",
    "payments per settlement transaction",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000),
)
SETTLEMENT_GAS = Counter("zeroclaim_settlement_gas", "gas used by settlement transactions")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, request id, extras."""

    _SKIP = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = getattr(record, "request_id", None) or request_id.get()
        if rid is not None:
            entry["request_id"] = rid
        entry.update({k: v for k, v in vars(record).items() if k not in self._SKIP})
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class RequestIdFilter(logging.Filter):
    """Stamps each record with the request id current when it was logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id.get()
        return True


def configure_logging(level: int = logging.INFO) -> None:
    """JSON lines on stderr for the service's loggers and uvicorn's."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    for name in ("zeroclaim", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False
    logging.getLogger("uvicorn.access").disabled = True  # the request log below replaces it


_access = logging.getLogger("zeroclaim.http")


async def request_middleware(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Request id, timing, one log line and the request metrics for every request."""
    given = request.headers.get("x-request-id")
    rid = given if given and _GOOD_ID.fullmatch(given) else uuid.uuid4().hex
    token = request_id.set(rid)
    started = time.perf_counter()
    status = 500
    try:
        response = await call_next(request)
        status = response.status_code
        response.headers["X-Request-ID"] = rid
        return response
    finally:
        seconds = time.perf_counter() - started
        route = _route_template(request)
        HTTP_REQUESTS.labels(route, str(status)).inc()
        HTTP_SECONDS.labels(route).observe(seconds)
        _access.info(
            "request",
            extra={
                "request_id": rid,
                "method": request.method,
                "route": route,
                "status": status,
                "ms": round(seconds * 1000, 2),
            },
        )
        request_id.reset(token)


def _route_template(request: Request) -> str:
    """The matched route as a template (``/api/v1/claims/{claim_id}``): the router's own
    template, behind the prefix the concrete path has in front of it."""
    route = request.scope.get("route")
    template: str | None = getattr(route, "path_format", None)
    if template is None:
        return "unmatched"
    concrete = template
    for name, value in request.scope.get("path_params", {}).items():
        concrete = concrete.replace("{" + name + "}", str(value))
    path = request.url.path
    prefix = path[: len(path) - len(concrete)] if path.endswith(concrete) else ""
    return prefix + template


class LedgerCollector(Collector):
    """What the database and the ledger say, read at scrape time."""

    def __init__(self, services: Services) -> None:
        self._services = services

    def collect(self) -> Iterator[GaugeMetricFamily]:
        services = self._services
        state = readiness(services)
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
                yield GaugeMetricFamily(f"zeroclaim_{name}", help_text, value=value)
        with services.sessions() as db:
            invoices = db.scalar(select(func.count()).select_from(models.Invoice)) or 0
            by_state = db.execute(
                select(models.Claim.state, func.count()).group_by(models.Claim.state)
            ).all()
            paid = db.scalar(select(func.coalesce(func.sum(models.Payment.amount_fen), 0))) or 0
        yield GaugeMetricFamily("zeroclaim_invoices", "invoices stored", value=invoices)
        claims = GaugeMetricFamily("zeroclaim_claims", "claims by state", labels=["state"])
        for claim_state, count in by_state:
            claims.add_metric([claim_state], count)
        yield claims
        yield GaugeMetricFamily("zeroclaim_paid_fen", "payments made, in fen", value=paid)


def metrics_text(services: Services) -> bytes:
    """The Prometheus exposition: this process's (or every worker's) counters, and the
    database and ledger figures."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        for collector in (HTTP_REQUESTS, HTTP_SECONDS, UPLOADED, VERIFICATIONS):
            registry.register(collector)
        for collector in (CLAIMS_SUBMITTED, SETTLEMENT_BATCH, SETTLEMENT_GAS):
            registry.register(collector)
    registry.register(LedgerCollector(services))
    return generate_latest(registry)


def readiness(services: Services, sequencer_expected: bool = False) -> dict[str, Any]:
    """The checks of ``/readyz``: ``ready`` and, per check, its figure or its error.

    ``sequencer_expected``: this process runs the sequencer loop (it or another worker should
    hold the lock), so a lock that nobody holds, or whose holder stopped beating, is a problem.
    """
    settings = services.settings
    now = datetime.now(UTC)
    out: dict[str, Any] = {"problems": []}
    try:
        with services.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            oldest = connection.execute(
                select(func.min(models.Claim.updated_at)).where(models.Claim.state == "approved")
            ).scalar()
        out["database"] = "ok"
        if oldest is not None:
            out["oldest_approved_claim_seconds"] = max(0.0, (now - _aware(oldest)).total_seconds())
    except Exception as exc:  # what is wrong is the answer
        out["database"] = f"error: {type(exc).__name__}"
        out["problems"].append("database")
    try:
        with services.lock:
            out["block_number"] = services.session.backend.block_number()
            anchored = services.sequencer.anchored()
            out["log_size"] = services.log.size
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
            stalled = _anchoring_stalled_seconds(services, out["anchored_size"], now)
        except Exception as exc:
            out["database"] = f"error: {type(exc).__name__}"
            out["problems"].append("database")
        else:
            out["anchoring_stalled_seconds"] = stalled
            if stalled > settings.ready_max_anchoring_stall_s:
                out["problems"].append("anchoring_stalled")
    if sequencer_expected:
        _check_sequencer(services, now, out)
    out["ready"] = not out["problems"]
    return out


def _anchoring_stalled_seconds(services: Services, anchored_size: int, now: datetime) -> float:
    """How long invoices have waited for anchoring while it did not move (0 when nothing
    waits). Two waits count: the oldest invoice not yet in the log, from when it arrived or
    from the latest append, whichever came later (a long backlog that is being appended is
    not stalled); and the first leaf past the latest checkpoint, from its append, less the
    anchoring interval a checkpoint may wait by design."""
    outbox = models.Outbox
    with services.engine.connect() as connection:
        arrived = connection.scalar(
            select(func.min(outbox.created_at)).where(outbox.appended_at.is_(None))
        )
        appended_last = connection.scalar(select(func.max(outbox.appended_at)))
        appended_first_unanchored = connection.scalar(
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
        stalled = max(stalled, waited - services.sequencer.interval_ms / 1000)
    return max(0.0, stalled)


def _check_sequencer(services: Services, now: datetime, out: dict[str, Any]) -> None:
    """Somebody holds the sequencer lock and beat lately (any worker, any host)."""
    try:
        holder = SequencerLock(services.engine, services.settings.data_dir).holder()
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
    if silent > services.settings.ready_max_sequencer_silence_s:
        out["sequencer"] = "silent"
        out["problems"].append("sequencer")


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
