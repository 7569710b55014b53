"""Background jobs: Celery tasks that run outbox rows exactly once in effect.

A job function receives the job's session and its JSON arguments::

    @job("catalog.title.index")
    def index_title(session: Session, title_id: str) -> None: ...

The wrapper claims the outbox row with a lease (a short transaction of its own), runs the
function, and stamps the row finished in the *same* transaction as the function's effects;
a duplicate delivery finds the row finished or leased and does nothing. A failure is
recorded on the row and retried with back-off up to ``max_attempts``; then the row is
marked failed and ``on_failure`` (if given) runs in its own transaction so the domain can
record a reason a person can act on. An :class:`~core.errors.AppError` (a refused input, a
broken rule) is permanent: it fails the job at once, with its ``code``, without retries;
a :class:`~core.errors.RetryableError` is retried and, if every try fails, recorded with
its ``code``. A job whose worker died on every try (claimed more than ``max_attempts``
times) is failed with the code ``worker_lost`` instead of being handed out for ever.

SQLite note: the job's transaction begins at its first SQL statement and holds the write
lock until commit. A long job (an encode) reads its inputs in its own short
``unit_of_work()`` first and touches ``session`` only to write results at the end.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import update
from sqlalchemy.orm import Session

from core.db import new_id, unit_of_work, utcnow
from core.errors import AppError, RetryableError
from core.metrics import JOB_DURATION, JOB_RUNS
from core.outbox import OutboxJob, enqueue
from core.queue import celery_app

log = logging.getLogger(__name__)

JobFunction = Callable[..., Any]
FailureHook = Callable[[Session, str, str, dict[str, Any]], None]  # (session, reason, code, args)


class LeaseLost(Exception):
    """Another worker took the job over while this one was still running it."""


@dataclass(frozen=True)
class JobSpec:
    name: str
    function: JobFunction
    lease_seconds: int
    max_attempts: int
    backoff_seconds: float
    on_failure: FailureHook | None


REGISTRY: dict[str, JobSpec] = {}


def claim(job_id: str, lease_seconds: int) -> str | None:
    """Take the job's lease if nobody holds it and it is not done; returns the lease token."""
    token = new_id()
    now = utcnow()
    with unit_of_work() as session:
        result = session.execute(
            update(OutboxJob)
            .where(
                OutboxJob.id == job_id,
                OutboxJob.finished_at.is_(None),
                OutboxJob.failed_at.is_(None),
                OutboxJob.available_at <= now,
                OutboxJob.lease_until.is_(None) | (OutboxJob.lease_until < now),
            )
            .values(
                lease_token=token,
                lease_until=now + timedelta(seconds=lease_seconds),
                attempts=OutboxJob.attempts + 1,
            )
            .execution_options(synchronize_session=False)
        )
    return token if result.rowcount == 1 else None  # type: ignore[attr-defined]


def _claims(job_id: str) -> int:
    with unit_of_work() as session:
        return session.get_one(OutboxJob, job_id).attempts


def _finish(session: Session, job_id: str, token: str) -> None:
    result = session.execute(
        update(OutboxJob)
        .where(
            OutboxJob.id == job_id, OutboxJob.lease_token == token, OutboxJob.finished_at.is_(None)
        )
        .values(finished_at=utcnow(), lease_until=None, last_error=None)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise LeaseLost(job_id)


def _record_failure(
    spec: JobSpec,
    job_id: str,
    token: str,
    error: str,
    args: dict[str, Any],
    *,
    code: str = "job_failed",
    permanent: bool = False,
) -> float | None:
    """Store the error; returns the back-off in seconds when the job should be retried."""
    with unit_of_work() as session:
        job = session.get(OutboxJob, job_id)
        if job is None or job.lease_token != token or job.finished_at is not None:
            return None
        job.last_error = error[-4000:]
        if permanent or job.attempts >= spec.max_attempts:
            job.failed_at = utcnow()
            job.lease_until = None
            retry = None
        else:
            delay = spec.backoff_seconds * (2 ** (job.attempts - 1))
            job.available_at = utcnow() + timedelta(seconds=delay)
            # Until then nobody may claim it; the sweep republishes it if our retry is lost.
            job.lease_until = job.available_at
            job.published_at = None
            retry = delay
    if retry is None and spec.on_failure is not None:
        with unit_of_work() as session:
            spec.on_failure(session, error, code, args)
    return retry


def run_job(name: str, job_id: str, args: dict[str, Any]) -> tuple[str, float]:
    """Run one delivery of a job; returns what happened (for logs and tests) and, for a
    retry, the back-off in seconds. Each delivery is counted by outcome for /metrics."""
    started = time.perf_counter()
    outcome, delay = _run_once(name, job_id, args)
    JOB_RUNS.labels(name, outcome).inc()
    if outcome != "skipped":
        JOB_DURATION.labels(name).observe(time.perf_counter() - started)
    return outcome, delay


def _run_once(name: str, job_id: str, args: dict[str, Any]) -> tuple[str, float]:
    spec = REGISTRY[name]
    token = claim(job_id, spec.lease_seconds)
    if token is None:
        log.info("job already done or running elsewhere", extra={"job": name, "job_id": job_id})
        return "skipped", 0.0
    if _claims(job_id) > spec.max_attempts:
        # Every earlier try ended without a word: the worker died (out of memory, killed,
        # a hard time limit) and the sweep handed the job out again. A job that kills its
        # worker every time must end, not go round for ever.
        _record_failure(
            spec,
            job_id,
            token,
            f"the worker running this job died {spec.max_attempts} times without finishing it",
            args,
            code="worker_lost",
            permanent=True,
        )
        return "failed", 0.0
    try:
        with unit_of_work() as session:
            spec.function(session, **args)
            _finish(session, job_id, token)
    except LeaseLost:
        log.warning("job lease lost; effects rolled back", extra={"job": name, "job_id": job_id})
        return "lease_lost", 0.0
    except (Exception, SoftTimeLimitExceeded) as exc:
        # A domain error (bad input, a refused master) will fail the same way every time:
        # record it once and stop, rather than burning retries on it.
        permanent = isinstance(exc, AppError)
        if isinstance(exc, AppError | RetryableError):
            error, code = exc.detail, exc.code
        else:
            error, code = f"{type(exc).__name__}: {exc}", "job_failed"
        log.exception("job failed", extra={"job": name, "job_id": job_id, "permanent": permanent})
        delay = _record_failure(spec, job_id, token, error, args, code=code, permanent=permanent)
        return ("failed", 0.0) if delay is None else ("retry", delay)
    return "done", 0.0


def job(
    name: str,
    *,
    lease_seconds: int = 300,
    max_attempts: int = 5,
    backoff_seconds: float = 2.0,
    queue: str = "default",
    soft_time_limit: int | None = None,
    on_failure: FailureHook | None = None,
) -> Callable[[JobFunction], JobFunction]:
    """Register ``function`` as the job ``name`` (also the Celery task name)."""

    def register(function: JobFunction) -> JobFunction:
        spec = JobSpec(name, function, lease_seconds, max_attempts, backoff_seconds, on_failure)
        REGISTRY[name] = spec

        @celery_app.task(
            name=name,
            bind=True,
            queue=queue,
            soft_time_limit=soft_time_limit or max(lease_seconds - 30, 30),
            time_limit=(soft_time_limit or max(lease_seconds - 30, 30)) + 30,
            ignore_result=True,
        )
        def task(self: Task[Any, Any], /, job_id: str, **args: Any) -> str:
            outcome, delay = run_job(name, job_id, args)
            if outcome == "retry":
                # A little after the lease ends, so the claim succeeds; if this message is
                # lost the outbox sweep republishes the job.
                self.apply_async(kwargs={"job_id": job_id, **args}, countdown=delay + 0.5)
            return outcome

        return function

    return register


@celery_app.task(name="core.periodic", ignore_result=True)
def periodic(job: str) -> None:
    """Celery beat's entry point for periodic jobs: one outbox row per tick."""
    if job not in REGISTRY:
        raise KeyError(f"unknown job {job}")
    with unit_of_work() as session:
        enqueue(session, job)
