"""What operators see on ``/metrics``: the HTTP counters of this process, the business
figures read from the database at scrape time, and (under ``serve``) the worker pool's job
counters.

The business figures are totals the database already holds (ledger rows, declined and
refunded tickets, qualified views, open outbox rows), so every API replica reports the same
numbers and none is lost when a process restarts. Each query ranges over an index: the
append-only tables only over rows written since the last read (:class:`AppendOnlyTally`),
tickets and sessions over partial indexes, the outbox over its open-jobs index. A scrape
reuses the previous answer for ``POCKETCINEMA_METRICS_CACHE_SECONDS``, so scrapers of every
replica, however frequent, cost the database one read per replica per period.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session

from boxoffice import ecb, views
from core import outbox
from core.db import read_only, utcnow
from core.metrics import multiprocess_collector, registry_of
from core.settings import get_settings
from payments import repository as payments
from payments.models import LedgerKind
from tickets import repository as tickets
from tickets.models import TicketState
from transcoding import detection
from transcoding import service as transcoding

# The jobs that make up a release's encode: their open rows are the transcode queue.
TRANSCODE_JOBS = frozenset(
    {
        detection.DETECT_JOB,
        transcoding.PREPARE_JOB,
        transcoding.CHUNK_JOB,
        transcoding.PACKAGE_JOB,
    }
)
WEBHOOK_JOBS = frozenset({transcoding.NOTIFY_JOB})


@dataclass
class AppendOnlyTally:
    """Totals of the append-only rows (ledger entries, qualified views) written up to
    ``through``. Each read adds the rows written since, so a scrape ranges over the newest
    rows of the created_at indexes instead of every row ever written. Rows newer than
    ``now - overlap`` are read afresh every time and folded in only once older: a
    transaction that commits late (its rows stamped before it committed) is still counted,
    the same margin the box-office roll-ups keep."""

    through: datetime | None = None
    ledger: dict[tuple[str, LedgerKind], tuple[int, int]] = field(default_factory=dict)
    views: int = 0

    def read(
        self, session: Session, now: datetime, overlap: timedelta
    ) -> tuple[dict[tuple[str, LedgerKind], tuple[int, int]], int]:
        settled = now - overlap
        if self.through is None or settled > self.through:
            # Both read before either is kept: a failed query leaves the tally as it was.
            ledger_rows = payments.ledger_totals(session, self.through, settled)
            view_rows = views.qualified_view_count(session, self.through, settled)
            self.ledger = _add(self.ledger, ledger_rows)
            self.views += view_rows
            self.through = settled
        ledger = _add(self.ledger, payments.ledger_totals(session, self.through))
        return ledger, self.views + views.qualified_view_count(session, self.through)


def _add(
    totals: dict[tuple[str, LedgerKind], tuple[int, int]], rows: list[payments.LedgerTotal]
) -> dict[tuple[str, LedgerKind], tuple[int, int]]:
    summed = dict(totals)
    for row in rows:
        entries, amount = summed.get((row.currency, row.kind), (0, 0))
        summed[(row.currency, row.kind)] = (entries + row.entries, amount + row.amount_minor)
    return summed


def read_business_metrics(tally: AppendOnlyTally) -> list[Metric]:
    """The business figures, from the database: seven index-range queries (five when the
    settled mark has not moved since the previous read)."""
    settings = get_settings()
    now = utcnow()
    started = time.perf_counter()
    overlap = timedelta(seconds=settings.boxoffice_rollup_overlap_seconds)
    with read_only() as session:
        ledger, views_total = tally.read(session, now, overlap)
        unpaid = tickets.settled_unpaid_by_currency(session)
        heard_since = now - timedelta(seconds=settings.playback_session_timeout_seconds)
        active = tickets.active_session_count(session, heard_since)
        jobs = outbox.job_stats(session, now)
        fx_state = ecb.fetch_status(session) if settings.fx_fetching else None
        fx_success = fx_state.last_success_at if fx_state else None
        fx_failures = fx_state.failures if fx_state else 0

    sold = CounterMetricFamily(
        "pocketcinema_tickets_sold",
        "Tickets paid for (one sale row in the ledger each), by currency",
        labels=["currency"],
    )
    refunded = CounterMetricFamily(
        "pocketcinema_tickets_refunded",
        "Tickets wholly refunded, by currency (partial refunds show in net)",
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
    currencies = {c for c, _ in ledger} | {c for _, c in unpaid}
    for currency in sorted(currencies):
        rows = {kind: value for (c, kind), value in ledger.items() if c == currency}
        sales_entries, sales_amount = rows.get(LedgerKind.sale, (0, 0))
        sold.add_metric([currency], sales_entries)
        refunded.add_metric([currency], unpaid.get((TicketState.refunded, currency), 0))
        gross.add_metric([currency], sales_amount)
        net.add_metric([currency], sum(amount for _, amount in rows.values()))

    payments_failed = GaugeMetricFamily(
        "pocketcinema_purchases_failed",
        "Tickets whose payment was declined or failed (and not paid since), by currency",
        labels=["currency"],
    )
    for (state, currency), count in sorted(unpaid.items()):
        if state is TicketState.failed:
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
        "Transcode jobs (track detection, prepare, chunk encodes, packaging) waiting or running",
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
    fx: list[Metric] = []
    if settings.fx_fetching:
        # +Inf before the first success, so the alert fires for a fetch that never worked.
        fx_age = (now - fx_success).total_seconds() if fx_success else float("inf")
        fx.append(
            GaugeMetricFamily(
                "pocketcinema_fx_last_success_age_seconds",
                "Seconds since the ECB reference rates were last fetched successfully",
                value=max(0.0, fx_age),
            )
        )
        fx.append(
            GaugeMetricFamily(
                "pocketcinema_fx_fetch_failures",
                "ECB rate fetches that failed since the last success",
                value=fx_failures,
            )
        )
    return [
        *fx,
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
        self._tally = AppendOnlyTally()
        self.reads = 0  # database reads so far (tests and the docs' cost claim)

    def collect(self) -> Iterator[Metric]:
        ttl = get_settings().metrics_cache_seconds
        with self._lock:
            if time.monotonic() - self._read_at >= ttl:
                self._metrics = read_business_metrics(self._tally)
                self._read_at = time.monotonic()
                self.reads += 1
            metrics = self._metrics
        yield from metrics

    def expire(self) -> None:
        """Drop the cached answer; the next scrape reads (the tally is kept)."""
        with self._lock:
            self._read_at = float("-inf")

    def forget(self) -> None:
        """Drop the cached answer and the tally (tests that empty the database)."""
        with self._lock:
            self._read_at = float("-inf")
            self._tally = AppendOnlyTally()


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
