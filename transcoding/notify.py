"""Studio webhooks: ``release.ready`` and ``release.failed``, HMAC-signed, retried.

Each studio has its own signing secret, derived from ``POCKETCINEMA_WEBHOOK_SIGNING_KEY``
and the studio id (so no secret is stored, and rotating the key rotates them all). The
signature header reads like Stripe's: ``X-PocketCinema-Signature: t=<unix>,v1=<hex>``,
where ``v1 = HMAC-SHA256(secret, f"{t}.{raw body}")``. A delivery that does not get a 2xx
raises, and the job runner retries it with exponential back-off. Deliveries go through the
guarded client (core/outbound.py): a URL that leads to a private, loopback or link-local
address is refused when the studio saves it and again when we send.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from catalog.models import Release
from core import outbound
from core.outbox import OutboxJob
from core.scope import StudioScope
from core.security import hmac_sign
from core.settings import get_settings
from transcoding import repository
from transcoding.service import NOTIFY_JOB

SIGNATURE_HEADER = "X-PocketCinema-Signature"


def studio_secret(studio_id: str) -> str:
    return hmac_sign(
        get_settings().webhook_signing_key.get_secret_value(), f"studio-webhook:{studio_id}"
    )


def webhook_url(session: Session, studio_id: str) -> str | None:
    return repository.get_studio(session, studio_id).webhook_url


def set_webhook_url(session: Session, studio_id: str, url: str | None) -> None:
    if url is not None:
        outbound.check_url(url)
    repository.get_studio(session, studio_id).webhook_url = url


class WebhookRejected(RuntimeError):
    """The receiver answered, but not with a 2xx. Not an AppError on purpose: the job runner
    retries it with back-off like a network error, while a refused URL fails at once."""


def sign(secret: str, body: bytes, timestamp: int) -> str:
    return f"t={timestamp},v1={hmac_sign(secret, f'{timestamp}.' + body.decode())}"


def payload(release: Release, event: str) -> dict[str, Any]:
    return {
        "type": event,
        "release": {
            "id": release.id,
            "title_id": release.title_id,
            "status": release.status.value,
            "attempt": release.attempt,
            "failure_code": release.failure_code,
            "failure_reason": release.failure_reason,
            "ready_at": release.ready_at.isoformat() if release.ready_at else None,
        },
    }


def deliver(session: Session, release_id: str, event: str) -> bool:
    """POST the event to the studio's webhook URL; returns False when none is configured."""
    release = repository.get_release(session, release_id)
    studio = repository.get_studio(session, release.studio_id)
    if not studio.webhook_url:
        return False
    body = json.dumps(payload(release, event), separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(studio_secret(studio.id), body, int(time.time())),
        "User-Agent": "PocketCinema-Webhooks/1",
    }
    reply = outbound.send(
        "POST",
        studio.webhook_url,
        content=body,
        headers=headers,
        timeout=get_settings().studio_webhook_timeout_seconds,
    )
    if not 200 <= reply.status < 300:
        raise WebhookRejected(f"the receiver answered {reply.status}")
    return True


class DeliveryState(StrEnum):
    pending = "pending"  # not tried yet
    retrying = "retrying"  # tried, failed, will be tried again (exponential back-off)
    done = "done"  # sent with a 2xx answer, or nothing to send (no URL was set then)
    failed = "failed"  # every try failed; no more tries


@dataclass(frozen=True)
class Delivery:
    id: str
    event: str
    release_id: str
    title_id: str
    state: DeliveryState
    attempts: int
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime | None
    finished_at: datetime | None


def _state(job: OutboxJob) -> DeliveryState:
    if job.finished_at is not None:
        return DeliveryState.done
    if job.failed_at is not None:
        return DeliveryState.failed
    return DeliveryState.retrying if job.attempts else DeliveryState.pending


def deliveries(session: Session, scope: StudioScope, offset: int, limit: int) -> list[Delivery]:
    """The studio's webhook delivery log: each notification job with how it went."""
    return [
        Delivery(
            id=job.id,
            event=str(job.args.get("event", "")),
            release_id=str(job.args.get("release_id", "")),
            title_id=title_id,
            state=_state(job),
            attempts=job.attempts,
            last_error=job.last_error,
            created_at=job.created_at,
            next_attempt_at=job.available_at if _state(job) is DeliveryState.retrying else None,
            finished_at=job.finished_at or job.failed_at,
        )
        for job, title_id in repository.webhook_deliveries(
            session, NOTIFY_JOB, scope, offset, limit
        )
    ]
