"""A studio's whole path through the API and the real worker pool: create a release, upload
a master and sidecars with the resumable protocol, transcode, get notified."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import m3u8
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from accounts.models import Role, Studio
from catalog.models import Release, ReleaseStatus, Title
from core import jobs
from core.db import unit_of_work
from core.outbox import OutboxJob
from core.settings import reset_settings_cache
from core.storage import get_store
from tests.helpers import (
    auth_header,
    child_pids,
    create_studio,
    create_title,
    create_user,
    wait_for,
    worker_pool,
)
from tests.transcoding.conftest import Masters
from transcoding import notify, service
from transcoding import tasks as registered_jobs
from transcoding.models import EncodeChunk

MiB = 1024 * 1024
assert callable(registered_jobs.prepare)  # importing the module registers the pipeline's jobs

# Two small rungs and a fast preset: these tests check the flow, not picture quality.
# No per-title probe and no quality scores (each costs encodes per release): those are
# tested in test_quality.py and through the job runner in test_failures.py.
FAST_PROFILE = {
    "name": "ci",
    "preset": "superfast",
    "native_rung_min_gain": 1000,
    "rungs": [
        {"name": "540p", "height": 540, "bitrate_kbps": 1200},
        {"name": "270p", "height": 270, "bitrate_kbps": 300},
    ],
    "per_title": None,
    "quality": None,
}


@dataclass
class StudioSide:
    client: TestClient
    headers: dict[str, str]
    studio_id: str
    title_id: str


@pytest.fixture
def studio(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[StudioSide]:
    profile = tmp_path / "ladder.json"
    profile.write_text(json.dumps(FAST_PROFILE))
    monkeypatch.setenv("POCKETCINEMA_LADDER_PROFILE_FILE", str(profile))
    monkeypatch.setenv("POCKETCINEMA_MULTIPART_PART_SIZE", str(5 * MiB))
    from core.settings import reset_settings_cache

    reset_settings_cache()
    owner = create_studio("Lotus Pictures")
    user = create_user("producer@lotus.example", Role.studio, owner.id)
    title = create_title(owner.id, slug="river-of-lanterns", title="River of Lanterns")
    yield StudioSide(client, auth_header(user), owner.id, title.id)
    monkeypatch.undo()
    reset_settings_cache()


def b64sha(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def put_part(side: StudioSide, target: dict[str, Any], data: bytes) -> httpx.Response:
    """PUT a part where the API says: to S3 directly (presigned) or to the API itself."""
    if target["url"].startswith("http://testserver") or "/v1/studio/uploads/" in target["url"]:
        path = target["url"].split("/v1/", 1)[1]
        response: httpx.Response = side.client.put(
            f"/v1/{path}", content=data, headers={**side.headers, **target["headers"]}
        )
        return response
    return httpx.put(target["url"], content=data, headers=target["headers"], timeout=60)


def upload_file(
    side: StudioSide,
    release_id: str,
    path: Path,
    kind: str,
    language: str | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    data = path.read_bytes()
    created = side.client.post(
        f"/v1/studio/releases/{release_id}/uploads",
        json={
            "kind": kind,
            "filename": path.name,
            "size_bytes": len(data),
            "language": language,
            "name": name,
        },
        headers=side.headers,
    )
    assert created.status_code == 201, created.text
    upload = created.json()
    size = upload["part_size"]
    chunks = [data[i : i + size] for i in range(0, len(data), size)]
    targets = side.client.post(
        f"/v1/studio/uploads/{upload['id']}/part-urls",
        json={
            "parts": [{"number": n + 1, "checksum_sha256": b64sha(c)} for n, c in enumerate(chunks)]
        },
        headers=side.headers,
    ).json()
    for target, chunk in zip(targets, chunks, strict=True):
        sent = put_part(side, target, chunk)
        assert sent.status_code == 200, sent.text
    done = side.client.post(f"/v1/studio/uploads/{upload['id']}/complete", headers=side.headers)
    assert done.status_code == 200, done.text
    return dict(done.json())


def new_release(side: StudioSide) -> str:
    response = side.client.post(
        f"/v1/studio/titles/{side.title_id}/releases",
        json={"label": "Theatrical"},
        headers=side.headers,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_another_studio_sees_nothing(studio: StudioSide) -> None:
    release_id = new_release(studio)
    rival = create_studio("Rival Films")
    rival_headers = auth_header(create_user("boss@rival.example", Role.studio, rival.id))
    viewer_headers = auth_header(create_user("fan@example.com"))
    c = studio.client
    assert (
        c.get(f"/v1/studio/releases/{release_id}", headers=rival_headers).json()["code"]
        == "release_not_found"
    )
    assert (
        c.post(
            f"/v1/studio/titles/{studio.title_id}/releases", json={}, headers=rival_headers
        ).status_code
        == 404
    )
    assert c.get("/v1/studio/releases", headers=rival_headers).json() == []
    assert (
        c.get(f"/v1/studio/releases/{release_id}", headers=viewer_headers).json()["code"]
        == "role_forbidden"
    )
    assert c.get(f"/v1/studio/releases/{release_id}").status_code == 401


def test_upload_resumes_after_a_dropped_part(studio: StudioSide) -> None:
    release_id = new_release(studio)
    data = os.urandom(11 * MiB)
    c = studio.client
    upload = c.post(
        f"/v1/studio/releases/{release_id}/uploads",
        json={"kind": "master", "filename": "master.mov", "size_bytes": len(data)},
        headers=studio.headers,
    ).json()
    assert (upload["part_size"], upload["part_count"]) == (5 * MiB, 3)
    parts = [data[: 5 * MiB], data[5 * MiB : 10 * MiB], data[10 * MiB :]]
    targets = c.post(
        f"/v1/studio/uploads/{upload['id']}/part-urls",
        json={
            "parts": [{"number": i + 1, "checksum_sha256": b64sha(p)} for i, p in enumerate(parts)]
        },
        headers=studio.headers,
    ).json()
    assert put_part(studio, targets[0], parts[0]).status_code == 200
    # The connection drops half-way through part 2: what arrives does not match the
    # checksum the client declared. The API refuses it outright (as S3 itself does); an
    # S3-compatible store that does not verify checksums keeps a short part, which then
    # does not count as uploaded.
    broken = put_part(studio, targets[1], parts[1][: 3 * MiB])
    if upload["transport"] == "api":
        assert broken.status_code == 422, broken.text
        assert broken.json()["code"] == "part_checksum_mismatch"
    early = c.post(f"/v1/studio/uploads/{upload['id']}/complete", headers=studio.headers)
    assert early.status_code == 409
    assert early.json()["code"] == "parts_missing"
    assert early.json()["missing"] == [2, 3]

    # The app restarts, asks what the server has, and sends only the rest.
    state = c.get(f"/v1/studio/uploads/{upload['id']}", headers=studio.headers).json()
    assert [p["number"] for p in state["uploaded_parts"]] == [1]
    for target, part in zip(targets[1:], parts[1:], strict=True):
        assert put_part(studio, target, part).status_code == 200
    asset = c.post(f"/v1/studio/uploads/{upload['id']}/complete", headers=studio.headers)
    assert asset.status_code == 200, asset.text
    assert asset.json()["status"] == "uploaded"
    again = c.post(f"/v1/studio/uploads/{upload['id']}/complete", headers=studio.headers)
    assert again.json()["code"] == "upload_completed"
    with unit_of_work() as session:
        key = session.get_one(Release, release_id)  # the release exists, and the bytes are whole:
        assert key.status is ReleaseStatus.awaiting_upload
    stored = [a for a in get_store().list_keys(f"releases/{release_id}/assets/")]
    assert len(stored) == 1
    assert (
        hashlib.sha256(get_store().get_bytes(stored[0])).digest() == hashlib.sha256(data).digest()
    )


def test_bad_upload_requests_get_clear_codes(studio: StudioSide) -> None:
    release_id = new_release(studio)
    c = studio.client
    bad = c.post(
        f"/v1/studio/releases/{release_id}/uploads",
        json={"kind": "subtitle", "filename": "../../etc/passwd", "size_bytes": -1},
        headers=studio.headers,
    )
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"size_bytes"}
    no_language = c.post(
        f"/v1/studio/releases/{release_id}/uploads",
        json={"kind": "audio", "filename": "dub.wav", "size_bytes": 10},
        headers=studio.headers,
    )
    assert no_language.json()["code"] == "language_required"
    no_master = c.post(f"/v1/studio/releases/{release_id}/transcode", headers=studio.headers)
    assert no_master.status_code == 409
    assert no_master.json()["code"] == "master_missing"


def test_a_hostile_master_fails_the_release_with_a_reason(
    studio: StudioSide, tmp_path: Path
) -> None:
    release_id = new_release(studio)
    playlist = tmp_path / "master.mp4"
    playlist.write_text("#EXTM3U\n#EXTINF:10,\nfile:///etc/passwd\n")
    upload_file(studio, release_id, playlist, "master")
    started = studio.client.post(
        f"/v1/studio/releases/{release_id}/transcode", headers=studio.headers
    )
    assert started.status_code == 202
    assert started.json()["status"] == "queued"
    with unit_of_work() as session:
        job = session.scalars(select(OutboxJob).where(OutboxJob.task == service.PREPARE_JOB)).one()
        job_id, args = job.id, dict(job.args)
    assert jobs.run_job(service.PREPARE_JOB, job_id, args)[0] == "failed"
    release = studio.client.get(f"/v1/studio/releases/{release_id}", headers=studio.headers).json()
    assert release["status"] == "failed"
    assert release["failure_code"] == "playlist_not_allowed", release
    assert "master file 'master.mp4'" in release["failure_reason"]
    assert release["assets"][0]["status"] == "rejected"
    assert "root:" not in json.dumps(release)


class WebhookSink:
    """A studio's webhook endpoint on loopback: refuses the first delivery, then records."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.refusals = 1
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if sink.refusals > 0:
                    sink.refusals -= 1
                    self.send_response(503)
                else:
                    sink.received.append((dict(self.headers), body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/pocketcinema"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def webhook_sink(studio: StudioSide, monkeypatch: pytest.MonkeyPatch) -> Iterator[WebhookSink]:
    # The receiver listens on loopback, which the guarded client refuses unless allowed.
    monkeypatch.setenv("POCKETCINEMA_OUTBOUND_ALLOWED_NETWORKS", "127.0.0.1/32")
    reset_settings_cache()
    sink = WebhookSink()
    with unit_of_work() as session:
        session.get_one(Studio, studio.studio_id).webhook_url = sink.url
    yield sink
    sink.server.shutdown()
    monkeypatch.delenv("POCKETCINEMA_OUTBOUND_ALLOWED_NETWORKS")
    reset_settings_cache()


def _fast_pool_env() -> dict[str, str]:
    return {"POCKETCINEMA_OUTBOX_SWEEP_SECONDS": "1"}


def _status_history(side: StudioSide, release_id: str, timeout: float) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = side.client.get(f"/v1/studio/releases/{release_id}", headers=side.headers).json()
        if (
            not seen
            or current["status"] != seen[-1]["status"]
            or current["progress_percent"] != seen[-1]["progress_percent"]
        ):
            seen.append(current)
        if current["status"] in ("ready", "failed"):
            return seen
        time.sleep(0.3)
    return seen


@pytest.mark.slow
def test_release_is_transcoded_by_the_pool_and_the_studio_is_notified(
    studio: StudioSide, masters: Masters, webhook_sink: WebhookSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    release_id = new_release(studio)
    upload_file(studio, release_id, masters.hd, "master")
    upload_file(studio, release_id, masters.dub_wav, "audio", "de", "Deutsch")
    upload_file(
        studio, release_id, masters.commentary_wav, "commentary", "en", "Cultural commentary"
    )
    upload_file(studio, release_id, masters.srt_en, "subtitle", "en", "English")
    upload_file(studio, release_id, masters.vtt_fr, "subtitle", "fr", "Français")
    assert (
        studio.client.post(
            f"/v1/studio/releases/{release_id}/transcode", headers=studio.headers
        ).status_code
        == 202
    )

    for name, value in _fast_pool_env().items():
        monkeypatch.setenv(name, value)
    with worker_pool(concurrency=2, beat=True):
        history = _status_history(studio, release_id, timeout=300)
        assert wait_for(lambda: bool(webhook_sink.received), timeout=60), "no webhook delivered"
    final = history[-1]
    assert final["status"] == "ready", final
    statuses = [h["status"] for h in history]
    assert statuses.index("encoding") < statuses.index("ready")
    outputs = final["outputs"]
    assert [v["resolution"] for v in outputs["variants"]] == ["960x540", "480x270"]
    assert {(a["language"], a["role"]) for a in outputs["audio"]} == {
        ("en", "original"),
        ("de", "dub"),
        ("en", "commentary"),
    }
    assert {s["language"] for s in outputs["subtitles"]} == {"en", "fr"}
    assert outputs["encrypted"] is True

    with unit_of_work() as session:
        release = session.get_one(Release, release_id)
        master_key, key_id = release.master_playlist_key, release.content_key_id
    assert master_key is not None
    master = get_store().get_bytes(master_key).decode()
    media = m3u8.loads(master).media
    assert {m.language for m in media if m.type == "SUBTITLES"} == {"en", "fr"}
    commentary = [m for m in media if m.name == "Cultural commentary"]
    assert commentary
    assert commentary[0].characteristics
    variant_key = master_key.rsplit("/", 1)[0] + "/" + outputs["variants"][0]["playlist"]
    variant = get_store().get_bytes(variant_key).decode()
    assert f"/v1/playback/keys/{key_id}" in variant, "segments point at the key-delivery route"
    assert not get_store().list_keys(f"work/{release_id}/"), "chunk scratch output is cleaned up"
    with unit_of_work() as session:
        tracks = {
            (t.kind.value, t.language) for t in session.get_one(Title, studio.title_id).tracks
        }
    assert tracks == {("audio", "en"), ("audio", "de"), ("subtitle", "en"), ("subtitle", "fr")}

    headers, body = webhook_sink.received[0]
    event = json.loads(body)
    assert event["type"] == "release.ready"
    assert event["release"]["id"] == release_id
    stamp, signature = (
        part.split("=", 1)[1] for part in headers["X-PocketCinema-Signature"].split(",")
    )
    expected = hmac.new(
        notify.studio_secret(studio.studio_id).encode(), f"{stamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(signature, expected)


def _has_ffmpeg_child(pid: int) -> bool:
    """A worker encoding a chunk (the audio job, beside it, runs FFmpeg too)."""
    for child in child_pids(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_text()
            if "ffmpeg" in cmdline and "/chunk-" in cmdline:
                return True
        except OSError:
            continue
    return False


@pytest.mark.slow
def test_a_worker_killed_mid_chunk_is_retried_and_the_release_completes(
    studio: StudioSide, masters: Masters, monkeypatch: pytest.MonkeyPatch
) -> None:
    release_id = new_release(studio)
    upload_file(studio, release_id, masters.hd, "master")
    assert (
        studio.client.post(
            f"/v1/studio/releases/{release_id}/transcode", headers=studio.headers
        ).status_code
        == 202
    )
    monkeypatch.setenv("POCKETCINEMA_TRANSCODE_LEASE_SECONDS", "20")
    for name, value in _fast_pool_env().items():
        monkeypatch.setenv(name, value)
    with worker_pool(concurrency=2, beat=True) as pool:
        victim = None
        deadline = time.monotonic() + 120
        while victim is None and time.monotonic() < deadline:
            victim = next((pid for pid in child_pids(pool.pid) if _has_ffmpeg_child(pid)), None)
            time.sleep(0.1)
        assert victim is not None, "no worker process ever ran FFmpeg"
        os.kill(victim, signal.SIGKILL)  # the machine running this chunk dies mid-encode
        history = _status_history(studio, release_id, timeout=300)
    assert history[-1]["status"] == "ready", history[-1]
    with unit_of_work() as session:
        attempts = [
            j.attempts
            for j in session.scalars(select(OutboxJob).where(OutboxJob.task == service.CHUNK_JOB))
        ]
        chunks = session.scalars(select(EncodeChunk)).all()
    assert max(attempts) >= 2, f"the killed chunk should have run again: {attempts}"
    assert all(c.done_at is not None for c in chunks)
