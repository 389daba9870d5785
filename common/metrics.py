"""Prometheus metrics at /metrics (prometheus-client).

Web, Celery workers and beat are separate processes, so the metrics come from two places:

- Business metrics are read at scrape time from the database (and the broker) by collectors,
  a constant number of aggregate queries whatever the data size. Each app owns its collector
  (settings.METRICS_COLLECTORS, dotted paths: common may not import the apps): provisioning runs
  by status and step latency (provisioning.metrics), deliveries by channel and status
  (notifications.metrics), fleet job runs and broker queue depth (here).
- Process-local counters (panel requests by method, endpoint template and status: they happen
  in workers) use prometheus-client's multiprocess mode when PROMETHEUS_MULTIPROC_DIR is set:
  every process writes its counters into that folder and the scrape adds them up. Unset, the
  scrape shows only the web process's own counters.

A collector that fails (database down, broker slow) is reported as
`portal_metrics_collector_up{collector=...} 0` and the rest of the scrape is still served.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import Any, Protocol

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.module_loading import import_string
from prometheus_client import Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import REGISTRY

logger = logging.getLogger(__name__)

__all__ = [
    "BrokerQueueCollector",
    "JobRunMetricsCollector",
    "MetricsCollector",
    "endpoint_template",
    "metrics_view",
    "panel_request_observe",
]


class MetricsCollector(Protocol):
    def collect(self) -> Iterable[Metric]: ...


# --- Process-local counters ---------------------------------------------------------------------

PANEL_REQUESTS = Counter(
    "portal_panel_requests",
    "HTTP requests to the Pterodactyl panel, by method, endpoint template and HTTP status "
    "(timeout / no_reply when no status came back).",
    ["method", "endpoint", "status"],
)

# A path segment that names one object: contains a digit (ids, external ids such as
# "deployment-12", 8-character identifiers, UUIDs). Resource names never do.
_ID_SEGMENT = re.compile(r".*\d.*")


def endpoint_template(path: str) -> str:
    """`/api/application/servers/12/suspend` -> `/api/application/servers/{id}/suspend`: a
    bounded label (one series per endpoint, not per server)."""
    segments = path.split("?", 1)[0].split("/")
    out = []
    for index, segment in enumerate(segments):
        previous = segments[index - 1] if index else ""
        if _ID_SEGMENT.fullmatch(segment) or (
            # The Client API's server identifiers may be all letters.
            previous == "servers" and segments[1:3] == ["api", "client"]
        ):
            out.append("{id}")
        else:
            out.append(segment)
    return "/".join(out)


def panel_request_observe(*, method: str, path: str, status: str) -> None:
    """Count one HTTP exchange with the panel (called by the panel client's transport)."""
    try:
        PANEL_REQUESTS.labels(method=method, endpoint=endpoint_template(path), status=status).inc()
    except Exception:  # metrics must never break a panel call
        logger.debug("could not count a panel request", exc_info=True)


# --- Collectors read at scrape time ----------------------------------------------------------


class JobRunMetricsCollector:
    """Fleet jobs (common.JobRun): runs by job and status, and the last finished run of each
    job: its duration and when it ended. Two queries."""

    def collect(self) -> Iterator[Metric]:
        from django.db.models import Count

        from common.models import JobRun

        runs = GaugeMetricFamily(
            "portal_job_runs",
            "Fleet job runs recorded, by job and status.",
            labels=["job", "status"],
        )
        names: set[str] = set()
        for row in JobRun.objects.order_by().values("name", "status").annotate(n=Count("id")):
            runs.add_metric([row["name"], row["status"]], row["n"])
            names.add(row["name"])
        yield runs

        # The last finished run of each job: one index lookup per job name (a handful), not a
        # correlated subquery per history row (1 s a scrape at 100k rows).
        last = [
            row
            for name in sorted(names)
            if (
                row := JobRun.objects.filter(name=name, finished_at__isnull=False)
                .order_by("-started_at", "-id")
                .values("name", "status", "duration_ms", "finished_at")
                .first()
            )
            is not None
        ]
        duration = GaugeMetricFamily(
            "portal_job_last_duration_seconds",
            "Duration of the last finished run of each fleet job.",
            labels=["job", "status"],
        )
        finished = GaugeMetricFamily(
            "portal_job_last_finished_timestamp_seconds",
            "When the last run of each fleet job finished (Unix time).",
            labels=["job"],
        )
        for row in last:
            duration.add_metric([row["name"], row["status"]], (row["duration_ms"] or 0) / 1000)
            finished.add_metric([row["name"]], row["finished_at"].timestamp())
        yield duration
        yield finished


class BrokerQueueCollector:
    """Messages waiting in each Celery queue, read from the broker with a short timeout."""

    def collect(self) -> Iterator[Metric]:
        from common.broker import broker_queue_depths

        depths = broker_queue_depths(timeout=settings.OPERATIONS_BROKER_TIMEOUT)
        up = GaugeMetricFamily(
            "portal_broker_queue_depth_up",
            "Whether the broker's queue lengths could be read (1) or not (0).",
        )
        up.add_metric([], 0 if depths is None else 1)
        yield up
        if depths is None:
            return
        queued = GaugeMetricFamily(
            "portal_broker_queue_messages",
            "Messages waiting in each Celery queue (not yet taken by a worker).",
            labels=["queue"],
        )
        for queue, depth in depths.items():
            queued.add_metric([queue], depth)
        yield queued


@lru_cache(maxsize=8)
def _collectors(paths: tuple[str, ...]) -> list[tuple[str, MetricsCollector]]:
    return [(path.rsplit(".", 1)[-1], import_string(path)()) for path in paths]


class _SafeCollectors:
    """The configured collectors, each allowed to fail on its own."""

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "portal_metrics_collector_up",
            "Whether each metrics collector could read its source in this scrape.",
            labels=["collector"],
        )
        for name, collector in _collectors(tuple(settings.METRICS_COLLECTORS)):
            try:
                metrics = list(collector.collect())
            except Exception as exc:  # one source down must not fail the scrape
                logger.warning("metrics collector %s failed: %s", name, type(exc).__name__)
                up.add_metric([name], 0)
                continue
            up.add_metric([name], 1)
            yield from metrics
        yield up


class _Sources:
    def __init__(self, *sources: Any) -> None:
        self.sources = sources

    def collect(self) -> Iterator[Metric]:
        for source in self.sources:
            yield from source.collect()


def scrape() -> bytes:
    """The text exposition of every metric (what /metrics answers)."""
    multiproc_dir = getattr(settings, "PROMETHEUS_MULTIPROC_DIR", "")
    if multiproc_dir:
        # Every process's counters from the shared folder (this one's included).
        process_metrics: Any = MultiProcessCollector(None, path=multiproc_dir)
    else:
        process_metrics = REGISTRY
    return generate_latest(_Sources(process_metrics, _SafeCollectors()))  # type: ignore[arg-type]


# --- Access -------------------------------------------------------------------------------------


def _bearer(request: HttpRequest) -> str:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def _from_allowed_network(request: HttpRequest) -> bool:
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    for network in settings.METRICS_ALLOWED_NETWORKS:
        try:
            if address in ipaddress.ip_network(network, strict=False):
                return True
        except ValueError:
            continue
    return False


def metrics_access_allowed(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    presented = _bearer(request)
    if token and presented and hmac.compare_digest(presented.encode(), token.encode()):
        return True
    return _from_allowed_network(request)


def metrics_view(request: HttpRequest) -> HttpResponse:
    from prometheus_client import CONTENT_TYPE_LATEST

    if request.method not in ("GET", "HEAD"):
        return HttpResponse(status=405, headers={"Allow": "GET, HEAD"})
    if not metrics_access_allowed(request):
        response = HttpResponse(
            "forbidden\n", status=401 if settings.METRICS_TOKEN else 403, content_type="text/plain"
        )
        if settings.METRICS_TOKEN:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    response = HttpResponse(scrape(), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response
