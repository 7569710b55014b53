"""Tickets' jobs for the worker pool: the provider calls of staff money actions."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from core.jobs import job
from tickets import refunds


def _action_failed(session: Session, reason: str, code: str, args: dict[str, Any]) -> None:
    refunds.record_failure(session, str(args["action_id"]), reason, code)


@job(refunds.ACTION_JOB, max_attempts=6, backoff_seconds=5.0, on_failure=_action_failed)
def run_action(session: Session, action_id: str) -> None:
    refunds.carry_out(session, action_id)
