"""Tickets' jobs for the worker pool: the provider calls of staff money actions, and the
calls to the app stores that follow a store purchase or catch its refunds."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from core.db import utcnow
from core.errors import RetryableError
from core.jobs import job
from core.settings import get_settings
from payments.stores import StoreUnavailable, google_play
from tickets import refunds, store_purchases

# Google's voided purchases list is read this far back each time (it keeps 30 days); what was
# applied before is found in the ledger and adds nothing.
VOIDED_LOOKBACK = timedelta(days=3)


def _action_failed(session: Session, reason: str, code: str, args: dict[str, Any]) -> None:
    refunds.record_failure(session, str(args["action_id"]), reason, code)


@job(refunds.ACTION_JOB, max_attempts=6, backoff_seconds=5.0, on_failure=_action_failed)
def run_action(session: Session, action_id: str) -> None:
    refunds.carry_out(session, action_id)


@job(store_purchases.CONSUME_JOB, max_attempts=8, backoff_seconds=30.0)
def consume_google_purchase(session: Session, product_id: str, purchase_token: str) -> None:
    try:
        google_play().consume(product_id, purchase_token)
    except StoreUnavailable as exc:
        raise RetryableError(exc.detail, code=exc.code) from None


@job(store_purchases.VOIDED_SYNC_JOB, max_attempts=3, backoff_seconds=60.0)
def sync_google_voided(session: Session) -> None:
    if not get_settings().google_play_package_name:
        return  # Google Play is not used here
    try:
        notices = google_play().voided_purchases(utcnow() - VOIDED_LOOKBACK)
    except StoreUnavailable as exc:
        raise RetryableError(exc.detail, code=exc.code) from None
    for notice in notices:
        store_purchases.apply_notice(session, notice)
