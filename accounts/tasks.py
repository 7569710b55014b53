"""Accounts' jobs for the worker pool: sending mail, and starting password resets."""

from __future__ import annotations

from sqlalchemy.orm import Session

from accounts import lifecycle, mails
from core.jobs import job


# A relay that is down is retried with back-off (2, 4, ... 256 s: about eight minutes in
# all, within a code's life); a relay that refuses the address for good fails at once.
@job(mails.MAIL_JOB, lease_seconds=120, max_attempts=9, backoff_seconds=2.0)
def send_mail(session: Session, mail_id: str) -> None:
    mails.deliver(session, mail_id)


@job(lifecycle.RESET_JOB, lease_seconds=60, max_attempts=5)
def start_password_reset(session: Session, email: str, locale: str) -> None:
    lifecycle.start_password_reset(session, email, locale)
