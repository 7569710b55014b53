"""Tickets' jobs for the worker pool: the provider calls of staff money actions."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from core.jobs import job
from tickets import refunds, screeners


def _action_failed(session: Session, reason: str, code: str, args: dict[str, Any]) -> None:
    refunds.record_failure(session, str(args["action_id"]), reason, code)


@job(refunds.ACTION_JOB, max_attempts=6, backoff_seconds=5.0, on_failure=_action_failed)
def run_action(session: Session, action_id: str) -> None:
    refunds.carry_out(session, action_id)


@job(screeners.MAIL_JOB, lease_seconds=120, max_attempts=9, backoff_seconds=2.0)
def mail_screener_invitation(session: Session, invitation_id: str, email: str, link: str) -> None:
    # core.mail: SMTP in production, an .eml file under the data directory without a relay.
    # A relay that is down is retried by the outbox; the Message-ID stays the invitation's,
    # so a repeat after an unknown outcome is recognisably the same message.
    screeners.send_invitation(session, invitation_id, email, link)
