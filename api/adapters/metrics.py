"""Logs and metrics: what an operator watches (readiness is ``api.read.health``).

Logs are JSON lines, one per request and one per event worth telling, each with the request id
(taken from a well-formed ``X-Request-ID`` or made here, and sent back in the response). They
carry routes as templates (``/api/v1/claims/{claim_id}``), never query strings or bodies, so no
personal data reaches them: ID numbers and names only ever travel in bodies.

Metrics are Prometheus text at ``/metrics``. Counters and histograms of this process (requests,
uploads, verifications by outcome, settlement batches and gas) use prometheus_client's
multi-process mode when ``PROMETHEUS_MULTIPROC_DIR`` is set, as it must be with several uvicorn
workers; what the database and the ledger say (claims by state, invoices, log and anchoring
lag, oldest approved claim) is read at scrape time (the gauges of ``api.read.health``), so
every worker answers the same.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

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


@dataclass(frozen=True)
class Gauge:
    """A figure read at scrape time: ``zeroclaim_<name>``, one value, or one per label value."""

    name: str
    help: str
    value: float | None
    label: str | None = None
    values: tuple[tuple[str, float], ...] = ()


class _GaugeCollector(Collector):
    """The gauges ``read`` returns, read at each scrape."""

    def __init__(self, read: Callable[[], Sequence[Gauge]]) -> None:
        self._read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for gauge in self._read():
            name = f"zeroclaim_{gauge.name}"
            if gauge.label is None:
                yield GaugeMetricFamily(name, gauge.help, value=gauge.value)
                continue
            family = GaugeMetricFamily(name, gauge.help, labels=[gauge.label])
            for label, value in gauge.values:
                family.add_metric([label], value)
            yield family


def metrics_text(gauges: Callable[[], Sequence[Gauge]]) -> bytes:
    """The Prometheus exposition: this process's (or every worker's) counters, and the
    ``gauges`` (the database's and the ledger's figures, ``api.read.health``)."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        for collector in (HTTP_REQUESTS, HTTP_SECONDS, UPLOADED, VERIFICATIONS):
            registry.register(collector)
        for collector in (CLAIMS_SUBMITTED, SETTLEMENT_BATCH, SETTLEMENT_GAS):
            registry.register(collector)
    registry.register(_GaugeCollector(gauges))
    return generate_latest(registry)
