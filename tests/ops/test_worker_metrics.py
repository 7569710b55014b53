"""A worker pool started the way production starts it (`pocketcinema worker`) exports the
job counters of all its prefork children on its own port, behind the metrics token."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import free_port
from tests.helpers import ROOT, create_studio, create_title, wait_for

pytestmark = [pytest.mark.usefixtures("db"), pytest.mark.slow]

TOKEN = "worker-metrics-" + "w" * 40


@pytest.fixture
def worker_port() -> Iterator[int]:
    port = free_port()
    env = os.environ | {
        "POCKETCINEMA_WORKER_METRICS_PORT": str(port),
        "POCKETCINEMA_METRICS_TOKEN": TOKEN,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "pocketcinema", "worker", "--concurrency", "2"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    try:
        yield port
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def runs_done(port: int, job: str) -> float:
    try:
        response = httpx.get(
            f"http://127.0.0.1:{port}/metrics",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=2,
        )
    except httpx.TransportError:
        return 0.0  # not listening yet
    assert response.status_code == 200
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "pocketcinema_job_runs_total" and sample.labels == {
                "task": job,
                "outcome": "done",
            }:
                return sample.value
    return 0.0


def test_worker_exports_its_childrens_job_counters(worker_port: int) -> None:
    studio = create_studio()
    # Each new title enqueues its search indexing job; the pool's children run them.
    for n in range(3):
        create_title(studio.id, slug=f"exported-{n}-{uuid.uuid4().hex[:6]}")
    assert wait_for(lambda: runs_done(worker_port, "catalog.title.index") >= 3, timeout=240), (
        "the worker's /metrics never showed the three index jobs"
    )
    refused = httpx.get(f"http://127.0.0.1:{worker_port}/metrics", timeout=2)
    assert refused.status_code == 401
    assert refused.json()["code"] == "metrics_unauthorized"
