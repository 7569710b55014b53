"""Small helpers for payments tests: buy, deliver an event, read back state."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from accounts.models import User
from core.db import unit_of_work
from payments.models import LedgerEntry, PaymentAction, PaymentEvent, PaymentReview
from tests.helpers import auth_header
from tests.payments.fake_stripe import WEBHOOK_SECRET, sign
from tickets.models import Ticket


def buy(
    client: TestClient,
    user: User,
    title_id: str,
    key: str | None = None,
    **body: Any,
) -> httpx.Response:
    headers = auth_header(user) | {"Idempotency-Key": key or str(uuid.uuid4())}
    response: httpx.Response = client.post(
        "/v1/purchases", json={"title_id": title_id, **body}, headers=headers
    )
    return response


def deliver(client: TestClient, payload: bytes, secret: str = WEBHOOK_SECRET, **kw: Any) -> Any:
    headers = {"Stripe-Signature": sign(payload, secret, **kw), "Content-Type": "application/json"}
    return client.post("/v1/webhooks/stripe", content=payload, headers=headers)


def ticket(ticket_id: str) -> Ticket:
    with unit_of_work() as session:
        found = session.get_one(Ticket, ticket_id)
        session.expunge(found)
        return found


def ledger(ticket_id: str | None = None) -> list[tuple[str, int, str, int | None]]:
    """(kind, amount, currency, fee) per entry, oldest first."""
    with unit_of_work() as session:
        stmt = select(LedgerEntry).order_by(LedgerEntry.occurred_at, LedgerEntry.created_at)
        if ticket_id:
            stmt = stmt.where(LedgerEntry.ticket_id == ticket_id)
        return [
            (e.kind.value, e.amount_minor, e.currency, e.provider_fee_minor)
            for e in session.scalars(stmt)
        ]


def count(
    model: type[Ticket] | type[PaymentEvent] | type[LedgerEntry] | type[PaymentAction],
) -> int:
    with unit_of_work() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def run_action_jobs() -> list[str]:
    """Run every open staff-action job in-process (``core.jobs.run_job``: the code the
    worker pool runs), oldest first; returns their outcomes."""
    from core import jobs
    from core.outbox import OutboxJob
    from tickets import tasks
    from tickets.refunds import ACTION_JOB

    assert ACTION_JOB in jobs.REGISTRY, tasks  # importing the module registers the job
    with unit_of_work() as session:
        open_jobs = [
            (j.id, dict(j.args))
            for j in session.scalars(
                select(OutboxJob)
                .where(
                    OutboxJob.task == ACTION_JOB,
                    OutboxJob.finished_at.is_(None),
                    OutboxJob.failed_at.is_(None),
                )
                .order_by(OutboxJob.created_at)
            )
        ]
    return [jobs.run_job(ACTION_JOB, job_id, args)[0] for job_id, args in open_jobs]


def review_of(ticket_id: str) -> PaymentReview:
    with unit_of_work() as session:
        found = session.scalars(
            select(PaymentReview).where(PaymentReview.ticket_id == ticket_id)
        ).one()
        session.expunge(found)
        return found


def notes(ticket_id: str) -> list[str | None]:
    with unit_of_work() as session:
        return [
            e.note
            for e in session.scalars(
                select(LedgerEntry)
                .where(LedgerEntry.ticket_id == ticket_id)
                .order_by(LedgerEntry.occurred_at, LedgerEntry.created_at)
            )
        ]
