"""The studio CLI against a real API on a loopback port and the real store: parallel,
checksummed, resumable master uploads, and following a release until ready or failed."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from catalog.models import ReleaseAsset, ReleaseStatus
from core.db import unit_of_work
from core.storage import get_store
from pocketcinema.cli import app
from pocketcinema.master_upload import state_path, upload_master
from pocketcinema.studio_api import Credentials, CredentialStore, StudioApi
from tests.playback.conftest import LiveServer, running_api
from tests.transcoding.conftest import ffmpeg
from tests.transcoding.test_release_flow import MiB, StudioSide, new_release, studio
from tests.transcoding.test_tracks_pipeline import run_jobs

__all__ = ["studio"]
PART = 5 * MiB  # the studio fixture's part size (S3's smallest)


@pytest.fixture
def live(studio: StudioSide, configure: Any) -> Iterator[LiveServer]:
    with running_api(configure) as server:
        yield server


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user's cache and config directories (state files, stored sign-in)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path


def token(side: StudioSide) -> str:
    return side.headers["Authorization"].removeprefix("Bearer ")


def api_of(side: StudioSide, server: LiveServer) -> StudioApi:
    return StudioApi(server.base_url, Credentials(token(side)))


def master_file(tmp_path: Path, size: int) -> Path:
    path = tmp_path / "master.mov"
    path.write_bytes(os.urandom(size))
    return path


def stored_bytes(asset_id: str) -> bytes:
    with unit_of_work() as session:
        key = session.get_one(ReleaseAsset, asset_id).storage_key
    return get_store().get_bytes(key)


def test_parts_go_in_parallel_and_the_store_holds_the_file(
    studio: StudioSide, live: LiveServer, cache: Path
) -> None:
    master = master_file(cache, 3 * PART + MiB)  # four parts, the last one short
    in_flight, peak, lock = [0], [0], threading.Lock()

    def slow_wire(number: int, data: bytes) -> bytes:
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time.sleep(0.3)
        with lock:
            in_flight[0] -= 1
        return data

    with api_of(studio, live) as api:
        report = upload_master(api, master, new_release(studio), parallel=4, tamper=slow_wire)
    assert sorted(report.sent_parts) == [1, 2, 3, 4]
    assert report.part_count == 4
    assert not report.resumed
    assert peak[0] >= 2, "parts were sent one after another"
    assert report.asset["status"] == "uploaded"
    assert stored_bytes(report.asset["id"]) == master.read_bytes()
    assert not list((cache / "cache").rglob("*.json")), "a finished upload leaves no state file"


def test_an_interrupted_upload_resumes_with_only_the_missing_parts(
    studio: StudioSide, live: LiveServer, cache: Path
) -> None:
    master = master_file(cache, 3 * PART + MiB)
    release_id = new_release(studio)

    def ctrl_c_after_two(number: int) -> None:
        if number == 2:
            raise KeyboardInterrupt

    with api_of(studio, live) as api, pytest.raises(KeyboardInterrupt):
        upload_master(api, master, release_id, parallel=1, on_part=ctrl_c_after_two)
    state = state_path(live.base_url, release_id)
    assert state.exists(), "the upload is remembered for the next run"

    with api_of(studio, live) as api:
        held = api.upload(json.loads(state.read_text())["upload_id"])
        assert [p["number"] for p in held["uploaded_parts"]] == [1, 2]
        report = upload_master(api, master, release_id, parallel=2)
    assert report.resumed
    assert sorted(report.sent_parts) == [3, 4], "only the missing parts are sent again"
    assert stored_bytes(report.asset["id"]) == master.read_bytes()
    assert not state.exists()


def test_a_corrupted_part_is_refused_and_sent_again(
    studio: StudioSide, live: LiveServer, cache: Path
) -> None:
    master = master_file(cache, 2 * PART)
    damaged: list[int] = []

    def flip_a_byte_once(number: int, data: bytes) -> bytes:
        if number == 2 and not damaged:
            damaged.append(number)
            return data[:100] + bytes([data[100] ^ 0xFF]) + data[101:]
        return data

    with api_of(studio, live) as api:
        report = upload_master(api, master, new_release(studio), tamper=flip_a_byte_once)
    assert damaged == [2]
    assert report.retried_parts == [2], "the store refused the damaged part"
    assert stored_bytes(report.asset["id"]) == master.read_bytes()


def test_a_changed_file_starts_a_new_upload(
    studio: StudioSide, live: LiveServer, cache: Path
) -> None:
    master = master_file(cache, PART + MiB)
    release_id = new_release(studio)

    def stop(number: int) -> None:
        raise KeyboardInterrupt

    with api_of(studio, live) as api, pytest.raises(KeyboardInterrupt):
        upload_master(api, master, release_id, parallel=1, on_part=stop)
    master.write_bytes(os.urandom(PART + MiB))  # re-exported: same name, new bytes
    with api_of(studio, live) as api:
        report = upload_master(api, master, release_id)
    assert not report.resumed
    assert stored_bytes(report.asset["id"]) == master.read_bytes()


def test_login_then_upload_from_the_command_line(
    studio: StudioSide, live: LiveServer, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("POCKETCINEMA_TOKEN", raising=False)
    monkeypatch.setenv("POCKETCINEMA_API_URL", live.base_url)
    master = master_file(cache, PART + MiB)
    runner = CliRunner()
    refused = runner.invoke(app, ["upload", str(master), "--release", new_release(studio)])
    assert refused.exit_code == 2
    assert "pocketcinema login" in refused.output

    monkeypatch.setenv("POCKETCINEMA_PASSWORD", "correct horse battery")
    signed_in = runner.invoke(app, ["login", "--email", "producer@lotus.example"])
    assert signed_in.exit_code == 0, signed_in.output
    stored = CredentialStore(live.base_url).path
    assert stored.stat().st_mode & 0o777 == 0o600
    done = runner.invoke(
        app, ["upload", str(master), "--release", new_release(studio), "--parallel", "2"]
    )
    assert done.exit_code == 0, done.output
    assert "2 of 2 parts" in done.output
    assert "is uploaded" in done.output


def _transcode_in_background(side: StudioSide, release_id: str) -> threading.Thread:
    started = side.client.post(f"/v1/studio/releases/{release_id}/transcode", headers=side.headers)
    assert started.status_code == 202, started.text
    worker = threading.Thread(
        target=run_jobs,
        args=(release_id, lambda r: r.status in (ReleaseStatus.ready, ReleaseStatus.failed)),
        daemon=True,
    )
    worker.start()
    return worker


def test_watch_exits_1_with_the_reason_of_a_failed_release(
    studio: StudioSide, live: LiveServer, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POCKETCINEMA_TOKEN", token(studio))
    release_id = new_release(studio)
    junk = master_file(cache, MiB)  # not a film at all
    with api_of(studio, live) as api:
        upload_master(api, junk, release_id)
    worker = _transcode_in_background(studio, release_id)
    result = CliRunner().invoke(
        app, ["releases", "watch", release_id, "--api", live.base_url, "--interval", "0.3"]
    )
    worker.join(timeout=60)
    assert result.exit_code == 1, result.output
    failed = studio.client.get(f"/v1/studio/releases/{release_id}", headers=studio.headers).json()
    assert failed["status"] == "failed"
    assert failed["failure_reason"] in result.output
    assert f"({failed['failure_code']})" in result.output


@pytest.mark.slow
@pytest.mark.backend_agnostic
def test_watch_follows_a_real_transcode_to_ready(
    studio: StudioSide, live: LiveServer, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POCKETCINEMA_TOKEN", token(studio))
    master = cache / "film.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=320x180:r=24:d=11",
        "-f",
        "lavfi",
        "-i",
        "sine=f=440:d=11",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        "24",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-metadata:s:a:0",
        "language=eng",
        str(master),
    )
    release_id = new_release(studio)
    upload = CliRunner().invoke(
        app, ["upload", str(master), "--release", release_id, "--api", live.base_url]
    )
    assert upload.exit_code == 0, upload.output
    worker = _transcode_in_background(studio, release_id)
    result = CliRunner().invoke(
        app, ["releases", "watch", release_id, "--api", live.base_url, "--interval", "0.5"]
    )
    worker.join(timeout=240)
    assert result.exit_code == 0, result.output
    assert f"release {release_id} is ready" in result.output
