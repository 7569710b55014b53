"""No release ever hangs: a fault in every step of the pipeline, in turn, ends the release
``failed`` with that step's code (or, for an optional artifact, ``ready`` with a warning);
``POST .../transcode`` then takes it to ``ready``, reusing the chunks already encoded.

The jobs run through the real job runner (:func:`core.jobs.run_job`, what every Celery
task calls) over the real outbox, in this process, so a fault is injected by replacing the
step's function with one that raises (pytest's monkeypatch, undone after each test).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from accounts.models import Role
from catalog.models import Release
from core import jobs, outbox
from core.db import unit_of_work, utcnow
from core.outbox import OutboxJob
from core.settings import reset_settings_cache
from core.storage import get_store
from drm import keys
from tests.helpers import auth_header, create_studio, create_title, create_user
from tests.transcoding.conftest import SRT_EN, ffmpeg, ffprobe_json
from tests.transcoding.test_release_flow import StudioSide, new_release, upload_file
from transcoding import package, per_title, pipeline, service, track_publishing
from transcoding import tasks as registered_jobs  # noqa: F401  (registers the pipeline's jobs)
from transcoding.models import EncodeChunk, TranscodeRun
from transcoding.tools import ToolFailed, ToolTimeout

pytestmark = pytest.mark.slow

TINY_PROFILE = {
    "name": "ci-tiny",
    "preset": "ultrafast",
    "native_rung_min_gain": 1000,
    "rungs": [
        {"name": "180p", "height": 180, "bitrate_kbps": 300},
        {"name": "90p", "height": 90, "bitrate_kbps": 100},
    ],
    # CI time: no per-title probe, no quality scores (tests/transcoding/test_quality.py).
    "per_title": None,
    "quality": None,
}
MJPEG_ERROR = "[mjpeg @ 0x7f] Non full-range YUV is non-standard"


@dataclass(frozen=True)
class Trailer:
    master: Path  # 3 s, 320x180, stereo
    with_subtitle: Path  # the same with an embedded French text subtitle (mov_text)
    teaser: Path  # 1 s, 320x180, no audio
    dub: Path
    srt: Path


@pytest.fixture(scope="module")
def trailer(tmp_path_factory: pytest.TempPathFactory) -> Trailer:
    d = tmp_path_factory.mktemp("trailer")
    srt = d / "en.srt"
    srt.write_text(SRT_EN.replace("00:00:05,000 --> 00:00:07,000", "00:00:02,000 --> 00:00:02,900"))
    master = d / "trailer.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=s=320x180:r=24:d=3",
        "-f", "lavfi", "-i", "sine=f=440:d=3:sample_rate=48000",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-ac", "2",
        # Tagged, as a post house delivers it: an untagged track is a warning of its own.
        "-c:a", "aac", "-metadata:s:a:0", "language=eng", str(master),
    )  # fmt: skip
    with_subtitle = d / "trailer_subtitled.mp4"
    ffmpeg(
        "-i", str(master), "-i", str(srt), "-map", "0", "-map", "1", "-c", "copy",
        "-c:s", "mov_text", "-metadata:s:s:0", "language=fra", str(with_subtitle),
    )  # fmt: skip
    teaser = d / "teaser.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=s=320x180:r=24:d=1",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(teaser),
    )  # fmt: skip
    dub = d / "dub_de.wav"
    ffmpeg("-f", "lavfi", "-i", "sine=f=550:d=3:sample_rate=48000", "-ac", "2", str(dub))
    return Trailer(master=master, with_subtitle=with_subtitle, teaser=teaser, dub=dub, srt=srt)


@pytest.fixture
def studio(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[StudioSide]:
    profile = tmp_path / "ladder.json"
    profile.write_text(json.dumps(TINY_PROFILE))
    monkeypatch.setenv("POCKETCINEMA_LADDER_PROFILE_FILE", str(profile))
    reset_settings_cache()
    # Retries after a second's fraction instead of seconds; nothing is sent to a broker:
    # this test is the worker.
    for name, spec in list(jobs.REGISTRY.items()):
        monkeypatch.setitem(jobs.REGISTRY, name, dataclasses.replace(spec, backoff_seconds=0.02))
    outbox.set_publish_after_commit(False)
    owner = create_studio("Trailer House")
    user = create_user("post@trailers.example", Role.studio, owner.id)
    title = create_title(owner.id, slug="short-cuts", title="Short Cuts")
    yield StudioSide(client, auth_header(user), owner.id, title.id)
    outbox.set_publish_after_commit(True)
    monkeypatch.undo()
    reset_settings_cache()


def run_jobs(timeout: float = 180.0) -> list[tuple[str, str]]:
    """Run every open transcoding job through the real job runner until none is left; returns
    (job name, outcome) in order. Fails the test if jobs are still open after ``timeout``
    seconds: that would be a hang."""
    outcomes: list[tuple[str, str]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = utcnow()
        with unit_of_work() as s:
            open_jobs = s.scalars(
                select(OutboxJob)
                .where(
                    OutboxJob.finished_at.is_(None),
                    OutboxJob.failed_at.is_(None),
                    OutboxJob.task.startswith("transcoding."),
                )
                .order_by(OutboxJob.created_at)
            ).all()
            due = [
                (j.id, j.task, dict(j.args))
                for j in open_jobs
                if j.available_at <= now and (j.lease_until is None or j.lease_until < now)
            ]
        if not open_jobs:
            return outcomes
        for job_id, task, args in due:
            outcomes.append((task, jobs.run_job(task, job_id, args)[0]))
        if not due:
            time.sleep(0.02)
    raise AssertionError(f"jobs still open after {timeout} s: {outcomes}")


def start(side: StudioSide, release_id: str) -> None:
    response = side.client.post(f"/v1/studio/releases/{release_id}/transcode", headers=side.headers)
    assert response.status_code == 202, response.text


def release_of(side: StudioSide, release_id: str) -> dict[str, Any]:
    body: dict[str, Any] = side.client.get(
        f"/v1/studio/releases/{release_id}", headers=side.headers
    ).json()
    return body


def chunk_jobs() -> int:
    with unit_of_work() as s:
        return len(s.scalars(select(OutboxJob).where(OutboxJob.task == service.CHUNK_JOB)).all())


def trailer_release(side: StudioSide, trailer: Trailer, master: Path | None = None) -> str:
    release_id = new_release(side)
    upload_file(side, release_id, master or trailer.master, "master")
    upload_file(side, release_id, trailer.dub, "audio", "de", "Deutsch")
    upload_file(side, release_id, trailer.srt, "subtitle", "en", "English")
    return release_id


def assert_ready(release: dict[str, Any]) -> None:
    assert release["status"] == "ready", release
    assert [v["resolution"] for v in release["outputs"]["variants"]] == ["320x180", "160x90"]
    with unit_of_work() as s:
        row = s.get_one(Release, release["id"])
        poster, sprite_vtt, playlist = row.poster_key, row.sprite_vtt_key, row.master_playlist_key
    assert playlist is not None
    assert get_store().exists(playlist)
    assert poster is not None
    assert get_store().exists(poster)
    assert sprite_vtt is not None
    cues = [
        line for line in get_store().get_bytes(sprite_vtt).decode().splitlines() if "#xywh" in line
    ]
    assert len(cues) == 10  # a 3 s trailer: one thumbnail every 0.3 s


Fault = Callable[..., Any]


def raising(exc: Exception) -> Fault:
    def fault(*args: Any, **kwargs: Any) -> Any:
        raise exc

    return fault


def tool_failed(tool: str = "ffmpeg", last_line: str = "Invalid data found") -> ToolFailed:
    return ToolFailed(tool, "exit status 1", last_line, returncode=1)


# (step, what to replace, the fault, the code the release fails with)
FAILURES: list[tuple[str, Any, str, Fault, str]] = [
    ("probe", pipeline, "check_master", raising(OSError("storage read failed")), "probe_failed"),
    ("plan", pipeline, "plan_chunks", raising(ValueError("no chunks")), "plan_failed"),
    ("encode", pipeline, "encode_ladder", raising(tool_failed()), "encode_failed"),
    (
        "encode-timeout",
        pipeline,
        "encode_ladder",
        raising(ToolTimeout("ffmpeg", "wall-time limit of 150s reached")),
        "encode_timeout",
    ),
    ("concat", pipeline, "concat_renditions", raising(tool_failed()), "concat_failed"),
    # Every audio track fails (the master's own streams and the dub): the film would be
    # silent, so the audio step fails.
    ("audio", track_publishing, "_encode_audio_track", raising(tool_failed()), "audio_failed"),
    ("subtitles", pipeline, "_subtitle_tracks", raising(KeyError("cues")), "subtitles_failed"),
    ("key", keys, "create_content_key", raising(RuntimeError("KMS unavailable")), "key_failed"),
    ("package", pipeline, "package_hls", raising(tool_failed("packager")), "package_failed"),
    ("publish", pipeline, "_publish", raising(OSError("S3 said 503")), "publish_failed"),
]


# Steps whose fault and recovery touch the database, the broker and storage run in both test
# profiles; the other steps fail in the same code path on any backend and run once.
ON_EVERY_BACKEND = {"probe", "encode", "package", "publish"}


def cases(rows: Sequence[tuple[str, Any, str, Any, str]], every_backend: set[str]) -> list[Any]:
    return [
        pytest.param(
            *row[1:],
            id=row[0],
            marks=() if row[0] in every_backend else pytest.mark.backend_agnostic,
        )
        for row in rows
    ]


@pytest.mark.parametrize(("target", "name", "fault", "code"), cases(FAILURES, ON_EVERY_BACKEND))
def test_a_fault_in_each_step_fails_the_release_with_its_code_and_a_retry_recovers(
    studio: StudioSide,
    trailer: Trailer,
    monkeypatch: pytest.MonkeyPatch,
    target: Any,
    name: str,
    fault: Fault,
    code: str,
) -> None:
    release_id = trailer_release(studio, trailer)
    start(studio, release_id)
    with monkeypatch.context() as faulty:
        faulty.setattr(target, name, fault)
        run_jobs()
    failed = release_of(studio, release_id)
    assert (failed["status"], failed["failure_code"]) == ("failed", code), failed
    assert "start the transcode again" in (failed["failure_reason"] or "").lower()
    with unit_of_work() as s:
        # Nothing reports success for work it did not do: the job that met the fault is
        # failed, not finished.
        failed_jobs = s.scalars(select(OutboxJob).where(OutboxJob.failed_at.is_not(None))).all()
        assert [j.task for j in failed_jobs]
        assert all(j.last_error for j in failed_jobs)
        encoded = s.scalars(select(EncodeChunk).where(EncodeChunk.done_at.is_not(None))).all()
    chunk_jobs_before = chunk_jobs()

    start(studio, release_id)
    run_jobs()
    ready = release_of(studio, release_id)
    assert_ready(ready)
    assert ready["attempt"] == 2
    assert ready["warnings"] == []
    if encoded:  # chunks encoded before the fault are reused, not encoded again
        assert chunk_jobs() == chunk_jobs_before
        with unit_of_work() as s:
            run = s.scalars(select(TranscodeRun).where(TranscodeRun.attempt == 2)).one()
            assert run.plan["chunks_reused"] == run.chunks_total == len(encoded)
    else:
        assert chunk_jobs() > chunk_jobs_before
    assert not get_store().list_keys(f"work/{release_id}/"), "scratch chunks are cleaned up"


WARNINGS: list[tuple[str, Any, str, Callable[[Fault], Fault], str]] = [
    (
        "poster",
        pipeline,
        "make_poster",
        lambda real: raising(tool_failed(last_line=MJPEG_ERROR)),
        "poster_failed",
    ),
    (
        "sprite",
        pipeline,
        "tile_sprite",
        lambda real: raising(tool_failed(last_line=MJPEG_ERROR)),
        "sprite_failed",
    ),
    (
        "iframe-playlists",
        package,
        "_split_iframe_ranges",
        lambda real: raising(OSError("No space left on device")),
        "iframe_playlists_failed",
    ),
    (
        "one-audio-track",
        track_publishing,
        # Only the dub (a sidecar file) breaks; the master's own audio, encoded from its
        # streams by encode_audio_group, still plays.
        "encode_audio",
        lambda real: raising(tool_failed()),
        "audio_track_failed",
    ),
    (
        "embedded-subtitle",
        track_publishing,
        "extract_text_subtitles",
        lambda real: raising(tool_failed(last_line="No such file or directory")),
        "subtitle_track_failed",
    ),
]


@pytest.mark.parametrize(("target", "name", "wrap", "code"), cases(WARNINGS, set()))
def test_an_optional_artifact_that_fails_is_a_warning_not_a_failure(
    studio: StudioSide,
    trailer: Trailer,
    monkeypatch: pytest.MonkeyPatch,
    target: Any,
    name: str,
    wrap: Callable[[Fault], Fault],
    code: str,
) -> None:
    embedded = name == "extract_text_subtitles"
    release_id = trailer_release(studio, trailer, trailer.with_subtitle if embedded else None)
    start(studio, release_id)
    with monkeypatch.context() as faulty:
        faulty.setattr(target, name, wrap(getattr(target, name)))
        run_jobs()
    release = release_of(studio, release_id)
    assert release["status"] == "ready", release
    assert [w["code"] for w in release["warnings"]] == [code], release["warnings"]
    assert "playable without it" in release["warnings"][0]["detail"]
    with unit_of_work() as s:
        row = s.get_one(Release, release_id)
        sprite_vtt, master_key = row.sprite_vtt_key, row.master_playlist_key
    assert master_key is not None
    master = get_store().get_bytes(master_key).decode()
    if code == "audio_track_failed":
        assert [a["role"] for a in release["outputs"]["audio"]] == ["original"]
    if code == "sprite_failed":
        assert sprite_vtt is None
    assert ("#EXT-X-I-FRAME-STREAM-INF" in master) is (code != "iframe_playlists_failed")
    # A new run clears the warnings and, without the fault, has none of this kind.
    start(studio, release_id)
    run_jobs()
    again = release_of(studio, release_id)
    assert_ready(again)
    if not embedded:  # (embedded extraction is checked on its own in test_pipeline)
        assert again["warnings"] == []


def test_a_step_that_fails_once_is_retried_and_finishes_the_release(
    studio: StudioSide, trailer: Trailer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The original hang: a retried prepare or package job found the status its first try
    had set (`probing`, `packaging`), took it for someone else's work, and reported success."""
    release_id = trailer_release(studio, trailer)
    start(studio, release_id)
    for name in ("check_master", "_publish"):
        real = getattr(pipeline, name)
        calls = {"n": 0}

        def once(*args: Any, real: Fault = real, calls: dict[str, int] = calls) -> Any:
            calls["n"] += 1
            if calls["n"] == 1:
                raise OSError("connection reset by peer")
            return real(*args)

        monkeypatch.setattr(pipeline, name, once)
    outcomes = run_jobs()
    assert (service.PREPARE_JOB, "retry") in outcomes
    assert (service.PACKAGE_JOB, "retry") in outcomes
    assert_ready(release_of(studio, release_id))


def test_a_job_whose_worker_keeps_dying_fails_the_release_as_worker_lost(
    studio: StudioSide, trailer: Trailer
) -> None:
    release_id = trailer_release(studio, trailer)
    start(studio, release_id)
    run_jobs_until = utcnow()
    # Three workers took the prepare job and died holding it (out of memory, say): the
    # row shows three claims and an expired lease; the sweep hands it out once more.
    with unit_of_work() as s:
        s.execute(
            update(OutboxJob)
            .where(OutboxJob.task == service.PREPARE_JOB)
            .values(attempts=3, lease_until=run_jobs_until, published_at=run_jobs_until)
        )
    run_jobs()
    lost = release_of(studio, release_id)
    assert (lost["status"], lost["failure_code"]) == ("failed", "worker_lost"), lost
    start(studio, release_id)
    run_jobs()
    assert_ready(release_of(studio, release_id))


def test_a_release_that_stops_moving_is_failed_as_stalled_and_retried(
    studio: StudioSide, trailer: Trailer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the cause (here: the package job marked done without packaging, as the old
    code did), the sweep ends it and the studio can start it again."""
    release_id = trailer_release(studio, trailer)
    start(studio, release_id)
    outcomes: list[tuple[str, str]] = []
    # Run everything but packaging, then lose the package job.
    with unit_of_work() as s:
        prepare = s.scalars(select(OutboxJob).where(OutboxJob.task == service.PREPARE_JOB)).one()
        prepare_id, prepare_args = prepare.id, dict(prepare.args)
    outcomes.append(("prepare", jobs.run_job(service.PREPARE_JOB, prepare_id, prepare_args)[0]))
    with unit_of_work() as s:
        chunk_rows = s.scalars(select(OutboxJob).where(OutboxJob.task == service.CHUNK_JOB)).all()
        chunk_runs = [(j.task, j.id, dict(j.args)) for j in chunk_rows]
    for task, job_id, args in chunk_runs:
        outcomes.append(("chunk", jobs.run_job(task, job_id, args)[0]))
    with unit_of_work() as s:
        s.execute(
            update(OutboxJob)
            .where(OutboxJob.task == service.PACKAGE_JOB)
            .values(finished_at=utcnow())
        )
    assert outcomes == [("prepare", "done"), ("chunk", "done")]
    assert release_of(studio, release_id)["status"] == "encoding"

    monkeypatch.setenv("POCKETCINEMA_TRANSCODE_STALL_SECONDS", "0.5")
    reset_settings_cache()
    with unit_of_work() as s:
        # A quarter of a second after it last moved (taken from the release, not from the
        # clock: on a loaded machine the steps above can take longer than the threshold).
        release = s.get_one(Release, release_id)
        moved = release.progress_at or release.status_changed_at
        assert service.fail_stalled(s, now=moved + timedelta(seconds=0.25)) == []
    time.sleep(0.6)
    with unit_of_work() as s:
        outbox.enqueue(s, service.STALLED_JOB)  # what beat does every sweep period
    run_jobs()
    stalled = release_of(studio, release_id)
    assert (stalled["status"], stalled["failure_code"]) == ("failed", "stalled"), stalled
    assert "no progress" in stalled["failure_reason"]

    monkeypatch.setenv("POCKETCINEMA_TRANSCODE_STALL_SECONDS", "3600")
    reset_settings_cache()
    before = chunk_jobs()
    start(studio, release_id)
    run_jobs()
    assert_ready(release_of(studio, release_id))
    assert chunk_jobs() == before, "the encoded chunk was reused"


@pytest.mark.backend_agnostic
def test_a_one_second_teaser_gets_a_ladder_poster_and_sprite(
    studio: StudioSide, trailer: Trailer
) -> None:
    release_id = new_release(studio)
    upload_file(studio, release_id, trailer.teaser, "master")
    start(studio, release_id)
    run_jobs()
    release = release_of(studio, release_id)
    assert release["status"] == "ready", release
    assert release["warnings"] == []
    assert [v["resolution"] for v in release["outputs"]["variants"]] == ["320x180", "160x90"]
    with unit_of_work() as s:
        row = s.get_one(Release, release_id)
        poster, sprite, vtt = row.poster_key, row.sprite_key, row.sprite_vtt_key
    assert poster
    assert sprite
    assert vtt
    cues = [line for line in get_store().get_bytes(vtt).decode().splitlines() if "-->" in line]
    assert len(cues) == 4
    assert cues[-1].endswith("00:00:01.000")


@pytest.mark.backend_agnostic
def test_chunks_fan_out_and_a_retried_chunk_adds_no_segment(
    studio: StudioSide, trailer: Trailer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 3 s trailer in 1 s segments on a pool of two: three chunk jobs. One chunk fails
    after uploading its outputs (the connection drops before it reports) and runs again;
    its second upload overwrites the first, so the packaged stream has each segment once:
    three segments, 72 frames at exactly n/24 s, decrypted the way a player does."""
    (tmp_path / "ladder.json").write_text(
        json.dumps(TINY_PROFILE | {"gop_seconds": 1.0, "segment_seconds": 1.0})
    )
    monkeypatch.setenv("POCKETCINEMA_TRANSCODE_POOL_SIZE", "2")
    monkeypatch.setenv("POCKETCINEMA_TRANSCODE_MIN_CHUNK_SECONDS", "1")
    reset_settings_cache()
    real = pipeline._upload_all
    calls = {"chunks": 0}

    def drops_once(files: list[tuple[str, Path]]) -> None:
        real(files)
        if "/chunks/00001/" in files[0][0]:
            calls["chunks"] += 1
            if calls["chunks"] == 1:
                raise OSError("connection reset by peer")

    monkeypatch.setattr(pipeline, "_upload_all", drops_once)
    release_id = trailer_release(studio, trailer)
    start(studio, release_id)
    outcomes = run_jobs()
    assert outcomes.count((service.CHUNK_JOB, "done")) == 3
    assert outcomes.count((service.CHUNK_JOB, "retry")) == 1
    assert_ready(release_of(studio, release_id))
    with unit_of_work() as s:
        assert [c.start_seconds for c in s.scalars(select(EncodeChunk))] == [0.0, 1.0, 2.0]
        row = s.get_one(Release, release_id)
        assert row.master_playlist_key is not None
        assert row.content_key_id is not None
        content_key = keys.content_key(s, row.content_key_id).key
        folder = row.master_playlist_key.rsplit("/", 1)[0]
        playlist = next(
            v["playlist"] for v in row.outputs["variants"] if v["resolution"] == "160x90"
        )
    store = get_store()
    lines = store.get_bytes(f"{folder}/{playlist}").decode().splitlines()
    media_folder = f"{folder}/{playlist.rsplit('/', 1)[0]}" if "/" in playlist else folder
    sequence = next(
        (int(x.split(":")[1]) for x in lines if x.startswith("#EXT-X-MEDIA-SEQUENCE:")), 0
    )
    init = next(x.split('URI="')[1].split('"')[0] for x in lines if x.startswith("#EXT-X-MAP"))
    segments = [x for x in lines if x and not x.startswith("#")]
    assert len(segments) == len(set(segments)) == 3
    stream = store.get_bytes(f"{media_folder}/{init}")
    for n, name in enumerate(segments):
        data = store.get_bytes(f"{media_folder}/{name}")
        decryptor = Cipher(
            algorithms.AES(content_key), modes.CBC((sequence + n).to_bytes(16, "big"))
        ).decryptor()
        unpadder = padding.PKCS7(128).unpadder()
        plain = decryptor.update(data) + decryptor.finalize()
        stream += unpadder.update(plain) + unpadder.finalize()
    joined = tmp_path / "joined.mp4"
    joined.write_bytes(stream)
    frames = json.loads(
        ffprobe_json("-show_entries", "frame=pts_time", "-select_streams", "v:0", str(joined))
    )["frames"]
    assert [round(float(f["pts_time"]) * 24) for f in frames] == list(range(72))


def test_per_title_rates_are_measured_once_per_master_and_scores_reach_the_studio(
    studio: StudioSide, trailer: Trailer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    measured = TINY_PROFILE | {
        "per_title": {"scenes": 1, "scene_seconds": 1.0},
        "quality": {"samples": 1, "sample_seconds": 2.0, "vmaf": True},
    }
    (tmp_path / "ladder.json").write_text(json.dumps(measured))
    probes: list[str] = []
    real_measure = per_title.measure_rates

    def counting(*args: Any, **kwargs: Any) -> dict[str, int]:
        probes.append("probe")
        return real_measure(*args, **kwargs)

    monkeypatch.setattr(per_title, "measure_rates", counting)
    release_id = trailer_release(studio, trailer)
    start(studio, release_id)
    with monkeypatch.context() as faulty:
        faulty.setattr(pipeline, "package_hls", raising(tool_failed("packager")))
        run_jobs()
    assert release_of(studio, release_id)["failure_code"] == "package_failed"

    start(studio, release_id)
    run_jobs()
    ready = release_of(studio, release_id)
    assert_ready(ready)
    # The retry planned with the first run's rates, so it reused every encoded chunk.
    assert probes == ["probe"]
    with unit_of_work() as s:
        first, second = s.scalars(select(TranscodeRun).order_by(TranscodeRun.attempt)).all()
        assert second.plan["rates"] == first.plan["rates"]
        assert second.plan["chunks_reused"] == second.chunks_total
        rates = dict(second.plan["rates"])
        assert all(
            0 < rate <= cap
            for rate, cap in zip(first.plan["rates"].values(), (300_000, 100_000), strict=True)
        )
    # Every rendition scored against the master (one 2 s window of the 3 s film), shown to
    # the studio.
    assert [(q["rendition"], q["codec"], q["bitrate"]) for q in ready["quality"]] == [
        ("180p", "h264", rates["180p"]),
        ("90p", "h264", rates["90p"]),
    ]
    for q in ready["quality"]:
        assert q["frames"] == 48
        assert 20 < q["xpsnr_y"] < 99
        assert 0.5 < q["ssim_y"] <= 1
        assert 0 < q["vmaf"] <= 100
    assert ready["warnings"] == []
