"""The command line as a new user runs it: real processes, real ports, real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.helpers import ROOT, child_pids, wait_for

pytestmark = pytest.mark.usefixtures("db")


def _cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pocketcinema", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.slow
def test_serve_runs_api_and_worker_pool_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "POCKETCINEMA_MODE": "development", "POCKETCINEMA_LOG_LEVEL": "INFO"}
    if "POCKETCINEMA_DATABASE_URL" not in os.environ:
        # Embedded profile: a brand-new data directory, as on a fresh checkout.
        env["POCKETCINEMA_DATA_DIR"] = str(tmp_path / "fresh-var")
    started = time.monotonic()
    serve = subprocess.Popen(
        [sys.executable, "-m", "pocketcinema", "serve", "--port", str(port), "--workers", "2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            try:
                return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        assert wait_for(ready, timeout=60), "serve never became ready"
        print(f"serve ready after {time.monotonic() - started:.1f}s")
        titles = httpx.get(f"{base}/v1/titles", timeout=5).json()
        assert [t["slug"] for t in titles["items"]] == ["the-lantern-keeper"], "seeded demo title"
        # Thin slice: the seed's index job went outbox -> broker -> worker pool -> database.
        assert wait_for(
            lambda: (
                httpx.get(f"{base}/v1/titles", params={"q": "LANTERN keeper"}, timeout=5).json()[
                    "total"
                ]
                == 1
            ),
            timeout=60,
        ), "the worker pool never indexed the seeded title"
        # The pool's children count their jobs into files the API's /metrics reads.
        indexed = 'pocketcinema_job_runs_total{outcome="done",task="catalog.title.index"}'

        def pool_counted() -> bool:
            try:
                return indexed in httpx.get(f"{base}/metrics", timeout=10).text
            except httpx.HTTPError:  # a slow answer on a busy machine: ask again
                return False

        assert wait_for(pool_counted, timeout=60), "serve's /metrics lacks the pool's jobs"
        assert httpx.get(f"{base}/openapi.json", timeout=5).status_code == 200
        workers = child_pids(serve.pid)
        assert workers, "serve should have a worker pool child"
    finally:
        serve.send_signal(signal.SIGTERM)
        output, _ = serve.communicate(timeout=60)
    assert serve.returncode == 0, output
    assert "pocketcinema: stopped" in output
    time.sleep(0.5)
    for pid in workers:
        assert (
            not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
        ), f"worker {pid} outlived serve"


def test_bad_setting_is_one_clear_line(tmp_path: Path) -> None:
    result = _cli(
        "migrate", env={"POCKETCINEMA_LOG_LEVEL": "LOUD", "POCKETCINEMA_DATA_DIR": str(tmp_path)}
    )
    assert result.returncode == 2
    assert "POCKETCINEMA_LOG_LEVEL" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_database_is_one_clear_line(tmp_path: Path) -> None:
    result = _cli(
        "migrate",
        env={
            "POCKETCINEMA_DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none",
            "POCKETCINEMA_DATA_DIR": str(tmp_path),
        },
    )
    assert result.returncode == 2
    assert "cannot reach the database" in result.stderr
    assert "POCKETCINEMA_DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_broker_down_at_start_is_one_clear_line(tmp_path: Path) -> None:
    result = _cli(
        "worker",
        env={
            "POCKETCINEMA_BROKER_URL": "redis://127.0.0.1:9/0",
            "POCKETCINEMA_DATA_DIR": str(tmp_path),
        },
    )
    assert result.returncode == 2
    assert "cannot reach the job broker" in result.stderr
    assert "Traceback" not in result.stderr


def test_production_mode_refuses_default_secrets(tmp_path: Path) -> None:
    result = _cli(
        "migrate", env={"POCKETCINEMA_MODE": "production", "POCKETCINEMA_DATA_DIR": str(tmp_path)}
    )
    assert result.returncode == 2
    assert "POCKETCINEMA_SECRET_KEY" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("host", "port", "advertised"),
    [
        ("127.0.0.1", 8080, "http://127.0.0.1:8080"),
        ("0.0.0.0", 9000, "http://127.0.0.1:9000"),  # noqa: S104
        ("::1", 8081, "http://[::1]:8081"),
        ("cinema.local", 80, "http://cinema.local:80"),
    ],
)
def test_serve_port_sets_the_advertised_base_url(
    monkeypatch: pytest.MonkeyPatch, host: str, port: int, advertised: str
) -> None:
    from core.settings import Settings
    from pocketcinema import cli

    monkeypatch.delenv("POCKETCINEMA_BASE_URL", raising=False)
    cli._advertise(host, port)
    assert os.environ["POCKETCINEMA_BASE_URL"] == advertised
    assert Settings().base_url == advertised
    # A configured base URL (the public address behind a proxy or CDN) is never overridden.
    monkeypatch.setenv("POCKETCINEMA_BASE_URL", "https://cinema.example")
    cli._advertise(host, port)
    assert os.environ["POCKETCINEMA_BASE_URL"] == "https://cinema.example"
