"""Celery entry point: ``celery -A pocketcinema.worker worker``. Imports every task module."""

from __future__ import annotations

import logging
import os
from typing import Any

from celery.signals import worker_init, worker_process_init, worker_process_shutdown

from accounts import tasks as accounts_tasks
from boxoffice import tasks as boxoffice_tasks
from catalog import tasks as catalog_tasks
from core import outbox
from core.db import dispose_engine
from core.logs import configure_logging
from core.metrics import EXPORT_PORT_ENV, MULTIPROC_ENV, serve_metrics, worker_registry
from core.queue import celery_app, configure_celery
from core.settings import get_settings
from pocketcinema import models
from tickets import tasks as tickets_tasks
from transcoding import tasks as transcoding_tasks

log = logging.getLogger(__name__)
settings = get_settings()
configure_logging(settings.log_level, settings.log_json)
app = configure_celery(settings)

TASK_MODULES = (
    accounts_tasks,
    boxoffice_tasks,
    catalog_tasks,
    outbox,
    tickets_tasks,
    transcoding_tasks,
)
MODELS = models  # every table known before any task runs


@worker_init.connect
def _export_metrics(**_: Any) -> None:
    port = int(os.environ.get(EXPORT_PORT_ENV) or 0)
    if port:
        try:
            serve_metrics(port, worker_registry(), settings.metrics_token.get_secret_value())
        except OSError as exc:
            # Jobs matter more than their counters: the pool runs on, and says why it is
            # not exported (two pools on one host need two ports).
            log.error(
                "worker metrics not exported: port %s: %s (set POCKETCINEMA_WORKER_METRICS_PORT)",
                port,
                exc,
            )


@worker_process_init.connect
def _fresh_connections(**_: Any) -> None:
    # A forked child must not reuse the parent's pooled database connections.
    dispose_engine()


@worker_process_shutdown.connect
def _forget_live_gauges(**_: Any) -> None:
    # Counters of a dead child stay in the totals; its live gauges must not.
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


__all__ = ["MODELS", "TASK_MODULES", "app", "celery_app"]
