"""The Celery application, configured from settings.

Embedded default: kombu's SQLAlchemy transport on an SQLite file, so ``serve`` needs no
broker server. Production: ``redis://`` or ``amqp://`` by URL. Task modules register
themselves with :data:`celery_app` through :func:`core.jobs.job`; the worker entry point
(``pocketcinema.worker``) imports them all.
"""

from __future__ import annotations

from pathlib import Path

from celery import Celery
from kombu import Connection

from core.settings import Settings, get_settings

celery_app = Celery("pocketcinema")

# Longest a single task may run (transcoding chunks set their own lower limits). The broker's
# visibility timeout must exceed it, or Redis re-delivers a task that is still running.
HARD_TIME_LIMIT = 3 * 3600


def configure_celery(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    url = settings.broker_url
    if url.startswith("sqla+sqlite:///"):
        Path(url.removeprefix("sqla+sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    transport_options: dict[str, object] = {}
    if url.startswith(("redis://", "rediss://")):
        transport_options["visibility_timeout"] = HARD_TIME_LIMIT + 600
    celery_app.conf.update(
        broker_url=url,
        broker_transport_options=transport_options,
        broker_connection_retry_on_startup=True,
        task_default_queue="default",
        task_ignore_result=True,
        result_backend=None,
        task_serializer="json",
        accept_content=["json"],
        # Work is acknowledged after it finishes and a worker that dies gives its task back;
        # one task per process at a time, so a long encode never hoards queued work.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_time_limit=HARD_TIME_LIMIT,
        task_soft_time_limit=HARD_TIME_LIMIT - 300,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        timezone="UTC",
        enable_utc=True,
        beat_schedule={
            "outbox-sweep": {
                "task": "core.outbox.sweep",
                "schedule": settings.outbox_sweep_seconds,
            },
            # Beat only asks `core.periodic` to enqueue the job through the outbox, so
            # periodic work gets the same claim, retry and failure records as any job.
            "boxoffice-rollup": {
                "task": "core.periodic",
                "schedule": settings.boxoffice_rollup_seconds,
                "kwargs": {"job": "boxoffice.rollup.pending"},
            },
            # Fails releases that stopped moving (see transcoding.service.fail_stalled).
            "fail-stalled-releases": {
                "task": "core.periodic",
                "schedule": settings.outbox_sweep_seconds,
                "kwargs": {"job": "transcoding.releases.fail_stalled"},
            },
            # Refunds and chargebacks Google reports in its voided purchases list, in case a
            # real-time notification was lost (tickets/store_purchases.py).
            "google-play-voided-purchases": {
                "task": "core.periodic",
                "schedule": 3600.0,
                "kwargs": {"job": "stores.google.voided_sync"},
            },
            "abort-abandoned-uploads": {
                "task": "core.periodic",
                "schedule": 3600.0,
                "kwargs": {"job": "transcoding.uploads.abort_abandoned"},
            },
        }
        | (
            # ECB reference rates (boxoffice/ecb.py); off unless FX fetching is on.
            {
                "fx-fetch": {
                    "task": "core.periodic",
                    "schedule": settings.fx_fetch_seconds,
                    "kwargs": {"job": "boxoffice.fx.fetch"},
                }
            }
            if settings.fx_fetching
            else {}
        ),
    )
    global _configured_for
    _configured_for = url
    return celery_app


_configured_for: str | None = None


def configured_app() -> Celery:
    """The Celery app configured for the current settings (re-configured if they changed,
    as they do between test configurations)."""
    if _configured_for != get_settings().broker_url:
        configure_celery()
    return celery_app


def check_broker(settings: Settings | None = None, timeout: int = 3) -> None:
    """Raise if the broker cannot be reached within ``timeout`` seconds."""
    settings = settings or get_settings()
    with Connection(settings.broker_url, connect_timeout=timeout) as conn:
        conn.ensure_connection(max_retries=1, timeout=timeout)
