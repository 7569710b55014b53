"""Celery entry point: ``celery -A pocketcinema.worker worker``. Imports every task module."""

from __future__ import annotations

from typing import Any

from celery.signals import worker_process_init

from boxoffice import tasks as boxoffice_tasks
from catalog import tasks as catalog_tasks
from core import outbox
from core.db import dispose_engine
from core.logs import configure_logging
from core.queue import celery_app, configure_celery
from core.settings import get_settings
from pocketcinema import models
from tickets import tasks as tickets_tasks
from transcoding import tasks as transcoding_tasks

settings = get_settings()
configure_logging(settings.log_level, settings.log_json)
app = configure_celery(settings)

TASK_MODULES = (boxoffice_tasks, catalog_tasks, outbox, tickets_tasks, transcoding_tasks)
MODELS = models  # every table known before any task runs


@worker_process_init.connect
def _fresh_connections(**_: Any) -> None:
    # A forked child must not reuse the parent's pooled database connections.
    dispose_engine()


__all__ = ["MODELS", "TASK_MODULES", "app", "celery_app"]
