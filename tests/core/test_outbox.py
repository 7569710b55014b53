"""The transactional outbox and the job runner, against the real database and broker."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.models import Title
from core import jobs, outbox
from core.db import unit_of_work, utcnow
from core.outbox import OutboxJob
from tests.helpers import ROOT, create_studio, create_title, wait_for, worker_pool

pytestmark = pytest.mark.usefixtures("db")

EFFECTS: list[str] = []


@jobs.job("tests.append_mark", max_attempts=3, backoff_seconds=0.01)
def append_mark(session: Session, title_id: str, fail_times: int = 0) -> None:
    title = session.get(Title, title_id)
    assert title is not None
    title.search_text += "x"  # one "x" per applied effect: duplicates would show
    EFFECTS.append(title_id)
    if len([e for e in EFFECTS if e == title_id]) <= fail_times:
        raise RuntimeError("transient failure")


FAILED: list[dict[str, Any]] = []


def _record_failed(session: Session, error: str, code: str, args: dict[str, Any]) -> None:
    FAILED.append({"error": error, "code": code, **args})


@jobs.job("tests.always_fails", max_attempts=2, backoff_seconds=0.0, on_failure=_record_failed)
def always_fails(session: Session, title_id: str) -> None:
    raise ValueError("the master is unreadable")


@pytest.fixture
def unpublished() -> Any:
    """Jobs of these tests run in-process via run_job; the broker must not carry them to a
    worker pool that does not know the test-only job names."""
    outbox.set_publish_after_commit(False)
    yield
    outbox.set_publish_after_commit(True)


def _job(job_id: str) -> OutboxJob:
    with unit_of_work() as session:
        job = session.get(OutboxJob, job_id)
        assert job is not None
        session.expunge(job)
        return job


def _marks(title_id: str) -> str:
    with unit_of_work() as session:
        return session.get_one(Title, title_id).search_text


@pytest.mark.usefixtures("unpublished")
def test_rolled_back_transaction_leaves_no_job() -> None:
    studio = create_studio()

    def failing_request() -> None:
        with unit_of_work() as session:
            outbox.enqueue(session, "tests.append_mark", title_id="t1")
            session.flush()
            raise RuntimeError("the request failed after enqueueing")

    with pytest.raises(RuntimeError):
        failing_request()
    with unit_of_work() as session:
        assert session.scalars(select(OutboxJob)).all() == []
    # A later, successful transaction in a fresh session publishes only its own job.
    title = create_title(studio.id)
    with unit_of_work() as session:
        tasks = [j.task for j in session.scalars(select(OutboxJob))]
    assert tasks == ["catalog.title.index"], "only the committed change's job exists"
    assert title.id


def test_commit_publishes_and_stamps_the_job() -> None:
    studio = create_studio()
    title = create_title(studio.id)
    with unit_of_work() as session:
        job = session.scalars(
            select(OutboxJob).where(OutboxJob.args["title_id"].as_string() == title.id)
        ).one()
    assert job.published_at is not None
    assert job.publish_count == 1


@pytest.mark.usefixtures("unpublished")
def test_duplicate_delivery_applies_effects_once() -> None:
    title = create_title(create_studio().id)
    with unit_of_work() as session:
        job_id = outbox.enqueue(session, "tests.append_mark", title_id=title.id).id
    first = jobs.run_job("tests.append_mark", job_id, {"title_id": title.id})
    second = jobs.run_job("tests.append_mark", job_id, {"title_id": title.id})
    assert first == ("done", 0.0)
    assert second == ("skipped", 0.0)
    assert _marks(title.id).count("x") == 1
    assert _job(job_id).finished_at is not None


@pytest.mark.usefixtures("unpublished")
def test_failure_is_recorded_then_retried_until_success() -> None:
    title = create_title(create_studio().id, slug="retry-film")
    with unit_of_work() as session:
        job_id = outbox.enqueue(session, "tests.append_mark", title_id=title.id, fail_times=1).id
    outcome, delay = jobs.run_job(
        "tests.append_mark", job_id, {"title_id": title.id, "fail_times": 1}
    )
    assert outcome == "retry"
    assert delay > 0
    failed_once = _job(job_id)
    assert failed_once.last_error == "RuntimeError: transient failure"
    assert failed_once.attempts == 1
    assert _marks(title.id).count("x") == 0, "the failed attempt's effects were rolled back"
    assert wait_for(
        lambda: (
            jobs.run_job("tests.append_mark", job_id, {"title_id": title.id, "fail_times": 1})[0]
            == "done"
        ),
        timeout=5,
        interval=0.02,
    )
    assert _marks(title.id).count("x") == 1
    assert _job(job_id).attempts == 2


@pytest.mark.usefixtures("unpublished")
def test_bounded_retries_end_in_failed_with_reason() -> None:
    title = create_title(create_studio().id, slug="doomed")
    FAILED.clear()
    with unit_of_work() as session:
        job_id = outbox.enqueue(session, "tests.always_fails", title_id=title.id).id
    assert jobs.run_job("tests.always_fails", job_id, {"title_id": title.id})[0] == "retry"
    assert jobs.run_job("tests.always_fails", job_id, {"title_id": title.id})[0] == "failed"
    job = _job(job_id)
    assert job.failed_at is not None
    assert job.last_error == "ValueError: the master is unreadable"
    assert [
        {
            "error": "ValueError: the master is unreadable",
            "code": "job_failed",
            "title_id": title.id,
        }
    ] == FAILED
    assert jobs.run_job("tests.always_fails", job_id, {"title_id": title.id})[0] == "skipped"


def test_sweep_selects_unpublished_lost_and_abandoned_jobs() -> None:
    title = create_title(create_studio().id)
    now = utcnow()
    with unit_of_work() as session:
        never_published = outbox.enqueue(session, "tests.append_mark", title_id=title.id)
        lost_by_broker = outbox.enqueue(session, "tests.append_mark", title_id=title.id)
        abandoned = outbox.enqueue(session, "tests.append_mark", title_id=title.id)
        running = outbox.enqueue(session, "tests.append_mark", title_id=title.id)
        done = outbox.enqueue(session, "tests.append_mark", title_id=title.id)
        session.info.pop("pocketcinema.outbox.pending")  # nothing published: we set states by hand
        old = now - timedelta(minutes=10)
        for job in (never_published, lost_by_broker, abandoned, running, done):
            job.created_at = job.available_at = old
        lost_by_broker.published_at = old
        abandoned.published_at = old
        abandoned.lease_until = now - timedelta(seconds=1)  # its worker died mid-run
        running.published_at = old
        running.lease_until = now + timedelta(minutes=5)
        done.finished_at = old
    with unit_of_work() as session:
        due = {j.id for j in outbox.due_jobs(session, now)} - {
            j.id
            for j in session.scalars(
                select(OutboxJob).where(OutboxJob.task == "catalog.title.index")
            )
        }
    assert due == {never_published.id, lost_by_broker.id, abandoned.id}


@pytest.mark.slow
def test_job_of_a_process_that_died_after_commit_still_runs(tmp_path: Any) -> None:
    """The publishing process is killed between commit and publish; the sweep in the real
    worker pool (Celery beat) finds the job, and a worker runs it."""
    studio = create_studio()
    child = textwrap.dedent(
        f"""
        import os
        from core import outbox
        from catalog import service
        from core.db import unit_of_work
        import pocketcinema.models

        def die(*args, **kwargs):
            os._exit(0)  # the process dies right after COMMIT, before the broker hears of it

        outbox.publish = die
        with unit_of_work() as session:
            service.create_title(session, studio_id={studio.id!r}, slug="orphan",
                                 original_title="Orphan Film", original_language="fr")
        raise SystemExit("unreachable: publish should have killed us")
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", child], env=env, cwd=ROOT, timeout=60, check=False
    )
    assert result.returncode == 0
    with unit_of_work() as session:
        title = session.scalars(select(Title).where(Title.slug == "orphan")).one()
        job = session.scalars(select(OutboxJob)).one()
        assert job.published_at is None, "the process died before publishing"
        assert title.indexed_at is None
    os.environ["POCKETCINEMA_OUTBOX_SWEEP_SECONDS"] = "1"
    try:
        with worker_pool(concurrency=2, beat=True):

            def indexed() -> bool:
                with unit_of_work() as session:
                    return session.get_one(Title, title.id).indexed_at is not None

            assert wait_for(indexed, timeout=60), "the swept job never ran"
    finally:
        del os.environ["POCKETCINEMA_OUTBOX_SWEEP_SECONDS"]
    with unit_of_work() as session:
        assert session.get_one(Title, title.id).search_text == "orphan film orphan"
        job = session.get_one(OutboxJob, job.id)
        assert job.finished_at is not None
        assert job.attempts == 1
