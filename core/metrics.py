"""Prometheus plumbing shared by every role: the job counters the workers export, the
bearer-token check for a metrics endpoint, and a small HTTP server for a separate port.

Celery's prefork pool runs jobs in child processes, so a worker's counters live in several
processes. ``pocketcinema worker`` sets ``PROMETHEUS_MULTIPROC_DIR`` before Celery starts
(prometheus_client picks its storage when first imported); each child then writes its
samples to files there and the worker's main process serves them all through
``MultiProcessCollector``. The API is one process and uses the default registry.
"""

from __future__ import annotations

import hmac
import os
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, make_wsgi_app
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Set by `pocketcinema worker` (with PROMETHEUS_MULTIPROC_DIR): the port on which the pool's
# main process exports the job counters of all its children. Absent: the pool exports none
# (`serve` aggregates its pool into the API's /metrics instead; tests start bare pools).
EXPORT_PORT_ENV = "_POCKETCINEMA_WORKER_METRICS_PORT"

# The job's name is the label `task`: Prometheus sets `job` on every series itself (the
# scrape job), and a scraped `job` label would be renamed `exported_job`.
JOB_RUNS = Counter(
    "pocketcinema_job_runs_total",
    "Job deliveries run by this worker pool, by job name and outcome "
    "(done, retry, failed, skipped, lease_lost)",
    ["task", "outcome"],
)
JOB_DURATION = Histogram(
    "pocketcinema_job_duration_seconds",
    "Wall time of one job delivery",
    ["task"],
    buckets=(0.05, 0.25, 1, 5, 15, 60, 300, 900, 1800, 3600),
)


def bearer_ok(authorization: str | None, token: str) -> bool:
    """True when ``authorization`` is ``Bearer <token>`` (compared in constant time)."""
    if not authorization or not token:
        return False
    scheme, _, presented = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), token.encode())


class Chain:
    """A collector that yields every metric of other registries and collectors, so one
    exposition can hold process-local, multiprocess and scrape-time metrics."""

    def __init__(self, *sources: CollectorRegistry | Collector) -> None:
        self.sources = sources

    def collect(self) -> Iterator[Metric]:
        # A family may come from two sources (the job counters of this process and of a
        # worker pool's files): one family per name, or the exposition would be invalid.
        families: dict[str, Metric] = {}
        for source in self.sources:
            for metric in source.collect():
                known = families.get(metric.name)
                if known is None:
                    families[metric.name] = metric
                else:
                    known.samples.extend(metric.samples)
        yield from families.values()


def registry_of(*sources: CollectorRegistry | Collector) -> CollectorRegistry:
    # auto_describe=False: the chained sources were checked for duplicates where they live.
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Chain(*sources))
    return registry


def multiprocess_collector(path: Path) -> Collector:
    return MultiProcessCollector(None, path=str(path))  # type: ignore[no-untyped-call]


def fresh_multiprocess_dir(path: Path) -> Path:
    """An empty directory for a pool's sample files: files of a previous run would add its
    counts to this one's."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True, mode=0o700)
    return path


def worker_registry() -> CollectorRegistry:
    """What a worker's main process exports: its children's samples when they write
    multiprocess files, else its own (a single-process pool)."""
    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        return registry_of(multiprocess_collector(Path(directory)))
    return REGISTRY


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds would drown the worker's log."""


def metrics_wsgi_app(
    registry: CollectorRegistry, token: str
) -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    """prometheus_client's WSGI exporter, refusing requests without the bearer token when
    one is configured."""
    exporter = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if token and not bearer_ok(environ.get("HTTP_AUTHORIZATION"), token):
            start_response(
                "401 Unauthorized",
                [
                    ("Content-Type", "application/problem+json"),
                    ("WWW-Authenticate", 'Bearer realm="metrics"'),
                ],
            )
            return [
                b'{"type":"https://pocketcinema.dev/problems/metrics_unauthorized",'
                b'"title":"Not authenticated","status":401,"code":"metrics_unauthorized",'
                b'"detail":"send Authorization: Bearer <POCKETCINEMA_METRICS_TOKEN>"}'
            ]
        body: Iterable[bytes] = exporter(environ, start_response)
        return body

    return app


def serve_metrics(
    port: int,
    registry: CollectorRegistry,
    token: str,
    host: str = "0.0.0.0",  # noqa: S104
) -> WSGIServer:
    """Serve ``registry`` on its own port from a daemon thread; returns the server."""
    server = make_server(host, port, metrics_wsgi_app(registry, token), handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
    thread.start()
    return server
