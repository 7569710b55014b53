"""Helpers for store tests: post a purchase, run queued store jobs in-process."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select

from accounts.models import User
from core.db import unit_of_work
from tests.helpers import auth_header


def buy_apple(client: TestClient, user: User, signed: str) -> httpx.Response:
    response: httpx.Response = client.post(
        "/v1/store-purchases/apple", json={"signed_transaction": signed}, headers=auth_header(user)
    )
    return response


def buy_google(client: TestClient, user: User, token: str, **body: Any) -> httpx.Response:
    payload = {"product_id": "film.the_film", "purchase_token": token} | body
    response: httpx.Response = client.post(
        "/v1/store-purchases/google", json=payload, headers=auth_header(user)
    )
    return response


def run_jobs(task: str) -> list[str]:
    """Run every open outbox job named ``task`` in-process (``core.jobs.run_job``: the code
    the worker pool runs), oldest first; returns their outcomes."""
    from boxoffice import tasks as boxoffice_tasks
    from core import jobs
    from core.outbox import OutboxJob
    from tickets import tasks as tickets_tasks

    assert task in jobs.REGISTRY, (boxoffice_tasks, tickets_tasks)
    with unit_of_work() as session:
        open_jobs = [
            (j.id, dict(j.args))
            for j in session.scalars(
                select(OutboxJob)
                .where(
                    OutboxJob.task == task,
                    OutboxJob.finished_at.is_(None),
                    OutboxJob.failed_at.is_(None),
                )
                .order_by(OutboxJob.created_at)
            )
        ]
    return [jobs.run_job(task, job_id, args)[0] for job_id, args in open_jobs]
