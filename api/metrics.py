"""What operators see on ``/metrics``: the HTTP counters of this process, the business
figures read from the database at scrape time, and (under ``serve``) the worker pool's job
counters.

The business figures are totals the database already holds (ledger rows, failed tickets,
qualified views, open outbox rows), so every API replica reports the same numbers and none
is lost when a process restarts. Reading them costs five aggregate queries; a scrape reuses
the previous answer for ``POCKETCINEMA_METRICS_CACHE_SECONDS``, so scrapers of every replica,
however frequent, cost the database at most five queries per replica per period.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from boxoffice import views
from core import outbox
from core.db import read_only, utcnow
from core.metrics import multiprocess_collector, registry_of
from core.settings import get_settings
from payments import repository as payments
from payments.models import LedgerKind
from tickets import repository as tickets
from transcoding import service as transcoding

# The jobs that make up a release's encode: their open rows are the transcode queue.
TRANSCODE_JOBS = frozenset(
    {transcoding.PREPARE_JOB, transcoding.CHUNK_JOB, transcoding.PACKAGE_JOB}
)
WEBHOOK_JOBS = frozenset({transcoding.NOTIFY_JOB})


def read_business_metrics() -> list[Metric]:
    """The business figures, straight from the database (five queries)."""
    settings = get_settings()
    now = utcnow()
    started = time.perf_counter()
    with read_only() as session:
        ledger = payments.ledger_totals(session)
        failed = tickets.failed_purchases_by_currency(session)
        views_total = views.qualified_view_count(session)
        heard_since = now - timedelta(seconds=settings.playback_session_timeout_seconds)
        active = tickets.active_session_count(session, heard_since)
        jobs = outbox.job_stats(session, now)

    sold = CounterMetricFamily(
        "pocketcinema_tickets_sold",
        "Tickets paid for (one sale row in the ledger each), by currency",
        labels=["currency"],
    )
    refunded = CounterMetricFamily(
        "pocketcinema_tickets_refunded",
        "Tickets with money refunded (wholly or in part), by currency",
        labels=["currency"],
    )
    gross = CounterMetricFamily(
        "pocketcinema_gross_minor_units",
        "Gross box office: ticket sales in minor units of the currency (cents, yen)",
        labels=["currency"],
    )
    net = GaugeMetricFamily(
        "pocketcinema_net_minor_units",
        "Sales less refunds and chargebacks (plus won disputes), in minor units",
        labels=["currency"],
    )
    for currency in sorted({t.currency for t in ledger}):
        rows = [t for t in ledger if t.currency == currency]
        sales = [t for t in rows if t.kind is LedgerKind.sale]
        refunds = [t for t in rows if t.kind is LedgerKind.refund]
        sold.add_metric([currency], sum(t.entries for t in sales))
        refunded.add_metric([currency], sum(t.tickets for t in refunds))
        gross.add_metric([currency], sum(t.amount_minor for t in sales))
        net.add_metric([currency], sum(t.amount_minor for t in rows))

    # A gauge, not a counter: a declined ticket paid later with another card leaves the set.
    payments_failed = GaugeMetricFamily(
        "pocketcinema_purchases_failed",
        "Tickets whose payment was declined or failed (and not paid since), by currency",
        labels=["currency"],
    )
    for currency, count in sorted(failed.items()):
        payments_failed.add_metric([currency], count)

    qualified = CounterMetricFamily(
        "pocketcinema_qualified_views", "Qualified views (box office)", value=views_total
    )
    sessions = GaugeMetricFamily(
        "pocketcinema_playback_sessions_active",
        "Playback sessions with a heartbeat within the session timeout",
        value=active,
    )

    def age(rows: list[outbox.JobStats]) -> float:
        oldest = [r.oldest_waiting for r in rows if r.oldest_waiting is not None]
        return max(0.0, (now - min(oldest)).total_seconds()) if oldest else 0.0

    encodes = [j for j in jobs if j.task in TRANSCODE_JOBS]
    hooks = [j for j in jobs if j.task in WEBHOOK_JOBS]
    queue_depth = GaugeMetricFamily(
        "pocketcinema_transcode_queue_depth",
        "Transcode jobs (prepare, chunk encodes, packaging) waiting or running",
        value=sum(j.open for j in encodes),
    )
    queue_age = GaugeMetricFamily(
        "pocketcinema_transcode_queue_oldest_age_seconds",
        "Age of the oldest transcode job due and not claimed by a worker (0 when none)",
        value=age(encodes),
    )
    jobs_failed = CounterMetricFamily(
        "pocketcinema_jobs_failed",
        "Jobs that failed for good (retries exhausted or a permanent error), by job name",
        labels=["task"],
    )
    for stats in sorted(jobs, key=lambda j: j.task):
        jobs_failed.add_metric([stats.task], stats.failed)
    backlog = GaugeMetricFamily(
        "pocketcinema_outbox_backlog",
        "Outbox jobs not finished and not failed (waiting, running or backing off)",
        value=sum(j.open for j in jobs),
    )
    waiting = GaugeMetricFamily(
        "pocketcinema_outbox_waiting",
        "Outbox jobs due and claimed by no worker (not running, not backing off)",
        value=sum(j.waiting for j in jobs),
    )
    backlog_age = GaugeMetricFamily(
        "pocketcinema_outbox_oldest_age_seconds",
        "Age of the oldest outbox job due and claimed by no worker (0 when none)",
        value=age(jobs),
    )
    hooks_failed = CounterMetricFamily(
        "pocketcinema_webhook_deliveries_failed",
        "Studio webhook deliveries given up after every retry",
        value=sum(j.failed for j in hooks),
    )
    hooks_retrying = GaugeMetricFamily(
        "pocketcinema_webhook_deliveries_retrying",
        "Studio webhook deliveries that failed at least once and will be retried",
        value=sum(j.retrying for j in hooks),
    )
    cost = GaugeMetricFamily(
        "pocketcinema_business_metrics_read_seconds",
        "Wall time of the last read of the business figures from the database",
        value=time.perf_counter() - started,
    )
    return [
        sold,
        refunded,
        gross,
        net,
        payments_failed,
        qualified,
        sessions,
        queue_depth,
        queue_age,
        jobs_failed,
        backlog,
        waiting,
        backlog_age,
        hooks_failed,
        hooks_retrying,
        cost,
    ]


class BusinessCollector:
    """Reads the business figures at scrape time, at most once per cache period; concurrent
    scrapes wait for the one read in progress instead of each querying."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._read_at = float("-inf")
        self._metrics: list[Metric] = []
        self.reads = 0  # database reads so far (tests and the docs' cost claim)

    def collect(self) -> Iterator[Metric]:
        ttl = get_settings().metrics_cache_seconds
        with self._lock:
            if time.monotonic() - self._read_at >= ttl:
                self._metrics = read_business_metrics()
                self._read_at = time.monotonic()
                self.reads += 1
            metrics = self._metrics
        yield from metrics

    def forget(self) -> None:
        """Drop the cached answer (tests that change the database between scrapes)."""
        with self._lock:
            self._read_at = float("-inf")


BUSINESS = BusinessCollector()
_worker_pool: Collector | None = None


def include_worker_pool(directory: Path) -> None:
    """Also export the job counters a local worker pool writes to ``directory`` (``serve``
    runs the pool as a child process with ``PROMETHEUS_MULTIPROC_DIR`` set to it)."""
    global _worker_pool
    _worker_pool = multiprocess_collector(directory)


def exposition_registry() -> CollectorRegistry:
    """Everything this API process exports, as one registry."""
    sources: list[CollectorRegistry | Collector] = [REGISTRY, BUSINESS]
    if _worker_pool is not None:
        sources.append(_worker_pool)
    return registry_of(*sources)


def render() -> bytes:
    """The exposition text (blocking: reads the database when the cache is stale)."""
    return generate_latest(exposition_registry())
