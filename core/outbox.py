"""Transactional outbox: a job exists if and only if the change that needs it committed.

Domain code calls :func:`enqueue` inside its transaction. The row is published to the
broker right after that transaction commits (an ``after_commit`` hook); if the process dies
in between, :func:`sweep` (run periodically by Celery beat) publishes it later. The sweep
also republishes jobs the broker lost and jobs whose worker died mid-run (lease expired).
Running a job twice is harmless: :mod:`core.jobs` claims a row with a lease and records the
finish in the same transaction as the job's effects.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Index, String, Text, case, event, func, or_, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.db import Base, get_engine, new_id, page_of, utcnow
from core.queue import celery_app, configured_app
from core.settings import get_settings

log = logging.getLogger(__name__)

_PENDING = "pocketcinema.outbox.pending"
_publish_enabled = True


class OutboxJob(Base):
    __tablename__ = "outbox_job"
    __table_args__ = (Index("ix_outbox_job_open", "finished_at", "failed_at", "available_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    task: Mapped[str] = mapped_column(String(200))
    args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    queue: Mapped[str] = mapped_column(String(50), default="default")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    available_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_at: Mapped[datetime | None]
    publish_count: Mapped[int] = mapped_column(default=0)
    lease_token: Mapped[str | None] = mapped_column(String(32))
    lease_until: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]


def enqueue(
    session: Session,
    task: str,
    *,
    queue: str = "default",
    delay: timedelta | None = None,
    **args: Any,
) -> OutboxJob:
    """Record a job in the caller's transaction. Arguments must be JSON (ids, not objects)."""
    now = utcnow()
    job = OutboxJob(
        id=new_id(),
        task=task,
        args=args,
        queue=queue,
        created_at=now,
        available_at=now + (delay or timedelta(0)),
    )
    session.add(job)
    if delay is None:
        session.info.setdefault(_PENDING, []).append((job.id, task, args, queue))
    return job


def publish(job_id: str, task: str, args: dict[str, Any], queue: str) -> None:
    """Send one job to the broker and stamp it published. Errors are left to the sweep."""
    configured_app().send_task(task, kwargs={"job_id": job_id, **args}, queue=queue)
    with get_engine().begin() as conn:
        conn.execute(
            update(OutboxJob)
            .where(OutboxJob.id == job_id)
            .values(published_at=utcnow(), publish_count=OutboxJob.publish_count + 1)
        )


@event.listens_for(Session, "after_commit")
def _publish_after_commit(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if not pending or not _publish_enabled:
        return
    for job_id, task, args, queue in pending:
        try:
            publish(job_id, task, args, queue)
        except Exception:
            # The row is committed; the sweep will publish it. Never fail the request here.
            log.warning("outbox publish failed, left for the sweep", extra={"job_id": job_id})


@event.listens_for(Session, "after_rollback")
@event.listens_for(Session, "after_soft_rollback")
def _forget_after_rollback(session: Session, *_: Any) -> None:
    session.info.pop(_PENDING, None)


def set_publish_after_commit(enabled: bool) -> None:
    """Tests simulate "the process died right after commit" by turning publishing off."""
    global _publish_enabled
    _publish_enabled = enabled


def due_jobs(session: Session, now: datetime, limit: int = 500) -> list[OutboxJob]:
    """Jobs that should be (re)published now: never published after a grace period, or
    published long ago and never claimed, or claimed by a worker whose lease ran out."""
    settings = get_settings()
    grace = now - timedelta(seconds=min(5.0, settings.outbox_republish_after_seconds))
    stale = now - timedelta(seconds=settings.outbox_republish_after_seconds)
    stmt = (
        select(OutboxJob)
        .where(
            OutboxJob.finished_at.is_(None),
            OutboxJob.failed_at.is_(None),
            OutboxJob.available_at <= now,
            or_(
                (OutboxJob.published_at.is_(None)) & (OutboxJob.created_at <= grace),
                (OutboxJob.published_at.is_not(None))
                & (OutboxJob.published_at <= stale)
                & (OutboxJob.lease_until.is_(None)),
                (OutboxJob.lease_until.is_not(None))
                & (OutboxJob.lease_until < now)
                & (OutboxJob.published_at.is_(None) | (OutboxJob.published_at <= stale)),
            ),
        )
        .order_by(OutboxJob.created_at)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def sweep(now: datetime | None = None) -> int:
    """Republish every due job; returns how many were sent."""
    now = now or utcnow()
    with Session(get_engine()) as session:
        jobs = [(j.id, j.task, dict(j.args), j.queue) for j in due_jobs(session, now)]
    sent = 0
    for job_id, task, args, queue in jobs:
        try:
            publish(job_id, task, args, queue)
            sent += 1
        except Exception:
            log.exception("outbox sweep could not publish", extra={"job_id": job_id})
    if sent:
        log.info("outbox sweep republished jobs", extra={"count": sent})
    return sent


@celery_app.task(name="core.outbox.sweep", ignore_result=True)
def sweep_task() -> int:
    return sweep()


@dataclass(frozen=True)
class JobStats:
    """Unfinished outbox rows of one job name: open (waiting, running or backing off), of
    those the ones due and claimed by no worker (waiting), open after a failed attempt
    (retrying), and given up for good (failed)."""

    task: str
    open: int
    waiting: int
    retrying: int
    failed: int
    oldest_waiting: datetime | None


def job_stats(session: Session, now: datetime) -> list[JobStats]:
    """One GROUP BY over the rows not finished (the open-jobs index: failed rows are not
    finished either), for operators' metrics."""
    is_open = OutboxJob.failed_at.is_(None)
    # Due and unclaimed: a running job holds a lease; a retry backs off behind one too.
    is_waiting = (
        is_open
        & (OutboxJob.available_at <= now)
        & (OutboxJob.lease_until.is_(None) | (OutboxJob.lease_until < now))
    )
    rows = session.execute(
        select(
            OutboxJob.task,
            func.count(case((is_open, 1))),
            func.count(case((is_waiting, 1))),
            func.count(case((is_open & OutboxJob.last_error.is_not(None), 1))),
            func.count(OutboxJob.failed_at),
            func.min(case((is_waiting, OutboxJob.created_at))),
        )
        .where(OutboxJob.finished_at.is_(None))
        .group_by(OutboxJob.task)
    ).all()
    return [JobStats(t, int(o), int(w), int(r), int(f), old) for t, o, w, r, f, old in rows]


def failed_jobs(session: Session, offset: int, limit: int) -> tuple[list[OutboxJob], int]:
    """Jobs that gave up (a permanent error, or out of attempts), most recent first: the task
    names the step, ``last_error`` what went wrong, ``args`` what it was working on."""
    stmt = select(OutboxJob).where(OutboxJob.failed_at.is_not(None))
    return page_of(session, stmt, (OutboxJob.failed_at.desc(), OutboxJob.id), offset, limit)
