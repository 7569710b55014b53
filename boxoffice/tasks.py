"""Box-office jobs for the worker pool (Celery beat enqueues the periodic one through the
outbox, see core/queue.py)."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from boxoffice import ecb, rollup, store_consumption
from core.jobs import job


@job("boxoffice.rollup.pending", lease_seconds=1800, max_attempts=3)
def rollup_pending(session: Session) -> None:
    rollup.rollup_pending(session)


@job("boxoffice.rollup.range", lease_seconds=3600, max_attempts=3)
def rollup_range(session: Session, first: str, last: str, title_id: str | None = None) -> None:
    rollup.rollup_range(session, date.fromisoformat(first), date.fromisoformat(last), title_id)


@job("stores.apple.consumption", max_attempts=6, backoff_seconds=30.0)
def send_consumption(session: Session, ticket_id: str, transaction_id: str) -> None:
    store_consumption.answer(session, ticket_id, transaction_id)


@job("boxoffice.fx.fetch", lease_seconds=300, max_attempts=1)
def fetch_fx_rates(session: Session) -> None:
    # A failure is recorded (and logged as an error) by fetch_rates itself, in this job's
    # transaction; the next periodic run tries again.
    ecb.fetch_rates(session)
