"""Tickets' jobs for the worker pool: the provider calls of staff money actions."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from core.errors import AppError
from core.jobs import job
from tickets import refunds, screeners


def _action_failed(session: Session, reason: str, code: str, args: dict[str, Any]) -> None:
    refunds.record_failure(session, str(args["action_id"]), reason, code)


@job(refunds.ACTION_JOB, max_attempts=6, backoff_seconds=5.0, on_failure=_action_failed)
def run_action(session: Session, action_id: str) -> None:
    refunds.carry_out(session, action_id)


class MailTransportMissing(AppError):
    code = "mail_transport_missing"


@job(screeners.MAIL_JOB, max_attempts=1)
def mail_screener_invitation(session: Session, invitation_id: str, email: str, link: str) -> None:
    # No mail transport exists in this service yet: the job fails with a code operators
    # see (/metrics: failed jobs) instead of pretending the e-mail went out. The studio
    # also receives the link in the invitation's response and can forward it.
    raise MailTransportMissing(
        f"no mail transport configured: screener invitation {invitation_id} was not e-mailed"
    )
