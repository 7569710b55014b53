"""One short encrypted title, transcoded once per test session by the real pipeline, and a
viewer holding a paid ticket for it in every test that asks.

The transcode (a 12 s 960x540 master with a German dub, a commentary and English subtitles,
two fast rungs, 2 s segments and a 4 s key period, so the film has three key periods) runs the pipeline's own jobs in-process, in order, through
``core.jobs.run_job``: the same code the worker pool runs, without waiting on a broker.
Its files stay in storage for the whole session; each test gets fresh database rows (the
``db`` fixture empties tables after every test) pointing at them, with the same wrapped
content key.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from accounts.models import Role, User
from catalog.models import Release, ReleaseStatus
from core import jobs
from core.db import unit_of_work, utcnow
from core.outbox import OutboxJob
from core.settings import get_settings, reset_settings_cache
from drm.models import ContentKey
from payments.providers import get_sandbox, sign_payload
from tests.conftest import Services, free_port
from tests.helpers import (
    auth_header,
    create_licensed_title,
    create_studio,
    create_user,
    served_on_loopback,
)
from tests.payments.conftest import configure
from tests.transcoding.conftest import ffmpeg
from transcoding import service as transcoding
from transcoding import tasks as registered_jobs

assert callable(registered_jobs.prepare)  # importing the module registers the pipeline's jobs
__all__ = ["configure"]

FAST_PROFILE = {
    "name": "ci",
    "preset": "superfast",
    "native_rung_min_gain": 1000,
    "segment_seconds": 2,
    "rungs": [
        {"name": "540p", "height": 540, "bitrate_kbps": 1200},
        {"name": "270p", "height": 270, "bitrate_kbps": 300},
    ],
    # No per-title probe or quality scores: playback tests need a ladder, fast.
    "per_title": None,
    "quality": None,
}
KEY_PERIOD_SECONDS = 4
# The cbcs release (the DRM tests): a 6 s, 640x360 master, two small rungs, 2 s key periods
# (three): a third of the other title's encoding work.
CBCS_SECONDS = 6
CBCS_KEY_PERIOD_SECONDS = 2
CBCS_PROFILE = FAST_PROFILE | {
    "rungs": [
        {"name": "360p", "height": 360, "bitrate_kbps": 600},
        {"name": "180p", "height": 180, "bitrate_kbps": 200},
    ]
}
PIPELINE_JOBS = (transcoding.PREPARE_JOB, transcoding.CHUNK_JOB, transcoding.PACKAGE_JOB)


@dataclass(frozen=True)
class PackagedRelease:
    """What the pipeline left behind: the release row and its wrapped key, as values."""

    release: dict[str, Any]
    keys: list[dict[str, Any]]

    @property
    def key_ids(self) -> list[str]:
        """The key of each key period, in order (from the release's outputs)."""
        return [str(k) for k in self.release["outputs"]["key_periods"]["key_ids"]]


def _make_sources(d: Path, seconds: int = 12, size: str = "960x540") -> dict[str, Path]:
    master = d / "master.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=s={size}:r=24:d={seconds}",
        "-f", "lavfi", "-i", f"sine=f=440:d={seconds}:sample_rate=48000",
        "-ac", "2", "-c:v", "libx264", "-preset", "ultrafast", "-g", "24",
        "-pix_fmt", "yuv420p", "-c:a", "aac", str(master),
    )  # fmt: skip
    dub = d / "dub_de.wav"
    ffmpeg("-f", "lavfi", "-i", "sine=f=550:d=12:sample_rate=48000", "-ac", "2", str(dub))
    commentary = d / "commentary.wav"
    ffmpeg("-f", "lavfi", "-i", "sine=f=770:d=12:sample_rate=48000", "-ac", "1", str(commentary))
    subs = d / "en.srt"
    subs.write_text("1\n00:00:01,000 --> 00:00:04,000\nHello, cinema.\n", encoding="utf-8")
    return {"master": master, "dub": dub, "commentary": commentary, "subs": subs}


def _upload(
    client: TestClient, headers: dict[str, str], release_id: str, path: Path, **meta: Any
) -> None:
    from tests.transcoding.test_release_flow import StudioSide, upload_file

    side = StudioSide(client, headers, "", "")
    upload_file(side, release_id, path, meta.pop("kind"), meta.get("language"), meta.get("name"))


def _run_pipeline(release_id: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with unit_of_work() as session:
            release = session.get_one(Release, release_id)
            if release.status in (ReleaseStatus.ready, ReleaseStatus.failed):
                assert release.status is ReleaseStatus.ready, release.failure_reason
                return
            job = session.scalars(
                select(OutboxJob)
                .where(
                    OutboxJob.task.in_(PIPELINE_JOBS),
                    OutboxJob.finished_at.is_(None),
                    OutboxJob.failed_at.is_(None),
                )
                .order_by(OutboxJob.created_at)
                .limit(1)
            ).first()
            next_job = (job.id, job.task, dict(job.args)) if job is not None else None
        if next_job is None:
            time.sleep(0.1)
            continue
        outcome, _ = jobs.run_job(next_job[1], next_job[0], next_job[2])
        assert outcome in ("done", "skipped"), (next_job[1], outcome)
    raise AssertionError("the release did not become ready in time")


def _empty_tables() -> None:
    from sqlalchemy import text

    from core.db import get_engine
    from pocketcinema.models import Base

    engine = get_engine()
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())


@pytest.fixture(scope="session")
def packaged_release(
    services: Services, tmp_path_factory: pytest.TempPathFactory
) -> PackagedRelease:
    return _packaged(tmp_path_factory, protection=None, extra_tracks=True)


@pytest.fixture(scope="session")
def cbcs_release(services: Services, tmp_path_factory: pytest.TempPathFactory) -> PackagedRelease:
    """A shorter cut of the master packaged with the cbcs protection profile (CMAF for HLS
    and DASH, keys only by license), three 2 s key periods: the DRM tests share it."""
    return _packaged(
        tmp_path_factory,
        protection="cbcs",
        extra_tracks=False,
        seconds=CBCS_SECONDS,
        key_period_seconds=CBCS_KEY_PERIOD_SECONDS,
        size="640x360",
        ladder=CBCS_PROFILE,
    )


def _packaged(
    tmp_path_factory: pytest.TempPathFactory,
    *,
    protection: str | None,
    extra_tracks: bool,
    seconds: int = 12,
    key_period_seconds: int = KEY_PERIOD_SECONDS,
    size: str = "960x540",
    ladder: dict[str, object] = FAST_PROFILE,
) -> PackagedRelease:
    import os

    from api.app import create_app

    d = tmp_path_factory.mktemp("playback-sources")
    sources = _make_sources(d, seconds, size)
    profile = d / "ladder.json"
    profile.write_text(json.dumps(ladder))
    saved = {
        k: os.environ.get(k)
        for k in (
            "POCKETCINEMA_LADDER_PROFILE_FILE",
            "POCKETCINEMA_MULTIPART_PART_SIZE",
            "POCKETCINEMA_PLAYBACK_KEY_PERIOD_SECONDS",
        )
    }
    os.environ["POCKETCINEMA_LADDER_PROFILE_FILE"] = str(profile)
    os.environ["POCKETCINEMA_PLAYBACK_KEY_PERIOD_SECONDS"] = str(key_period_seconds)
    os.environ["POCKETCINEMA_MULTIPART_PART_SIZE"] = str(5 * 1024 * 1024)
    reset_settings_cache()
    try:
        studio = create_studio("Playback Pictures")
        producer = create_user(
            f"producer-{uuid.uuid4().hex[:6]}@example.com", Role.studio, studio.id
        )
        title = create_licensed_title(
            studio.id, slug=f"lanterns-{uuid.uuid4().hex[:6]}", playable=False
        )
        headers = auth_header(producer)
        with TestClient(create_app(), raise_server_exceptions=False) as client:
            created = client.post(
                f"/v1/studio/titles/{title.id}/releases",
                json={"label": "Main", **({"protection": protection} if protection else {})},
                headers=headers,
            )
            assert created.status_code == 201, created.text
            release_id = created.json()["id"]
            _upload(client, headers, release_id, sources["master"], kind="master")
            if extra_tracks:
                _upload(
                    client,
                    headers,
                    release_id,
                    sources["dub"],
                    kind="audio",
                    language="de",
                    name="Deutsch",
                )
                _upload(
                    client,
                    headers,
                    release_id,
                    sources["commentary"],
                    kind="commentary",
                    language="en",
                    name="Commentary",
                )
                _upload(
                    client,
                    headers,
                    release_id,
                    sources["subs"],
                    kind="subtitle",
                    language="en",
                    name="English",
                )
            assert (
                client.post(
                    f"/v1/studio/releases/{release_id}/transcode", headers=headers
                ).status_code
                == 202
            )
        _run_pipeline(release_id)
        with unit_of_work() as session:
            release = session.get_one(Release, release_id)
            keys = session.scalars(
                select(ContentKey).where(ContentKey.release_id == release_id)
            ).all()
            snapshot = PackagedRelease(
                release={
                    c.key: getattr(release, c.key)
                    for c in Release.__table__.columns
                    if c.key not in ("title_id", "studio_id")
                },
                keys=[
                    {c.key: getattr(key, c.key) for c in ContentKey.__table__.columns}
                    for key in keys
                ],
            )
        _empty_tables()  # every test installs its own rows (see install_release)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        reset_settings_cache()
    return snapshot


WATERMARK_SECONDS = 24
WATERMARK_PROFILE = {
    "name": "ci-watermark",
    "preset": "superfast",
    "native_rung_min_gain": 1000,
    "gop_seconds": 1,
    "segment_seconds": 1,
    "rungs": [
        {"name": "216p", "height": 216, "bitrate_kbps": 600},
        {"name": "108p", "height": 108, "bitrate_kbps": 150},
    ],
    # Only the top rung carries the mark: the other shows that the setting is honoured.
    "watermark": {"rungs": 1, "strength": 2},
}


@pytest.fixture(scope="session")
def watermarked(
    services: Services, tmp_path_factory: pytest.TempPathFactory
) -> tuple[PackagedRelease, Path]:
    """A release whose top rung carries the A/B watermark, and its master (the same
    deterministic source made again: the unmarked copy)."""
    packaged = _packaged(
        tmp_path_factory,
        protection=None,
        extra_tracks=False,
        seconds=WATERMARK_SECONDS,
        key_period_seconds=600,
        size="384x216",
        ladder=WATERMARK_PROFILE,
    )
    master = _make_sources(tmp_path_factory.mktemp("unmarked"), WATERMARK_SECONDS, "384x216")
    return packaged, master["master"]


# The cbcs case: the same film and ladder, three 8 s key periods (per-period keys and
# segment numbers that run on across periods).
WATERMARK_CBCS_KEY_PERIOD_SECONDS = 8


@pytest.fixture(scope="session")
def watermarked_cbcs(
    services: Services, tmp_path_factory: pytest.TempPathFactory
) -> PackagedRelease:
    """The watermarked release again, packaged with the cbcs protection profile."""
    return _packaged(
        tmp_path_factory,
        protection="cbcs",
        extra_tracks=False,
        seconds=WATERMARK_SECONDS,
        key_period_seconds=WATERMARK_CBCS_KEY_PERIOD_SECONDS,
        size="384x216",
        ladder=WATERMARK_PROFILE,
    )


@dataclass
class Viewing:
    """A viewer with a paid ticket for a title that has the packaged release."""

    client: TestClient
    viewer: User
    headers: dict[str, str]
    title_id: str
    ticket_id: str
    payment_intent_id: str
    release_id: str
    key_ids: list[str]
    device_id: str = "phone-1"

    @property
    def key_id(self) -> str:
        """The key of the first key period."""
        return self.key_ids[0]

    def start(
        self,
        headers: dict[str, str] | None = None,
        client: TestClient | None = None,
        **body: Any,
    ) -> Any:
        return (client or self.client).post(
            "/v1/playback/sessions",
            json={"ticket_id": self.ticket_id, **body},
            headers=headers or self.headers,
        )

    def grant_headers(self, grant: str, device: str | None = None) -> dict[str, str]:
        """What a player sends with playlist, key and media requests."""
        return {"Authorization": f"Bearer {grant}", "X-Device-Id": device or self.device_id}


def install_release(packaged: PackagedRelease, title_id: str, studio_id: str) -> None:
    with unit_of_work() as session:
        session.add(Release(**packaged.release, title_id=title_id, studio_id=studio_id))
        session.flush()
        for key in packaged.keys:
            session.add(ContentKey(**key))


def buy_ticket(client: TestClient, headers: dict[str, str], title_id: str) -> tuple[str, str]:
    bought = client.post(
        "/v1/purchases",
        json={"title_id": title_id},
        headers=headers | {"Idempotency-Key": str(uuid.uuid4())},
    )
    assert bought.status_code in (200, 201), bought.text
    intent = bought.json()["payment_intent_id"]
    paid = client.post(
        f"/v1/sandbox/payments/{intent}/confirm",
        json={"payment_method": "pm_card_visa"},
        headers=headers,
    )
    assert paid.status_code == 200, paid.text
    assert paid.json()["ticket"]["state"] == "active"
    return bought.json()["ticket"]["id"], intent


def refund(client: TestClient, viewing: Viewing, amount_minor: int = 1299) -> None:
    """The money goes back, as the sandbox's signed webhook tells us."""
    payload, signature = refund_event(viewing, amount_minor)
    sent = client.post(
        "/v1/webhooks/sandbox",
        content=payload,
        headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
    )
    assert sent.status_code == 200, sent.text


def refund_event(viewing: Viewing, amount_minor: int = 1299) -> tuple[bytes, str]:
    """The sandbox's signed ``charge.refunded`` event for the viewer's ticket."""
    charge_id = f"ch_sb_{uuid.uuid4().hex[:12]}"
    body = {
        "id": f"evt_sb_{uuid.uuid4().hex[:12]}",
        "object": "event",
        "type": "charge.refunded",
        "created": int(time.time()),
        "livemode": False,
        "data": {
            "object": {
                "id": charge_id,
                "object": "charge",
                "amount": amount_minor,
                "currency": "usd",
                "payment_intent": viewing.payment_intent_id,
                "refunded": True,
                "amount_refunded": amount_minor,
                "refunds": {
                    "object": "list",
                    "data": [
                        {
                            "id": f"re_sb_{uuid.uuid4().hex[:12]}",
                            "object": "refund",
                            "amount": amount_minor,
                            "currency": "usd",
                            "charge": charge_id,
                            "payment_intent": viewing.payment_intent_id,
                            "status": "succeeded",
                        }
                    ],
                },
            }
        },
    }
    payload = json.dumps(body).encode()
    return payload, sign_payload(payload, get_sandbox().webhook_secret)


@pytest.fixture
def viewing(client: TestClient, packaged_release: PackagedRelease, configure: Any) -> Viewing:
    return make_viewing(client, packaged_release, configure)


@pytest.fixture
def drm_viewing(client: TestClient, cbcs_release: PackagedRelease, configure: Any) -> Viewing:
    """A viewer with a paid ticket for a title whose release is cbcs-protected."""
    return make_viewing(client, cbcs_release, configure)


def make_viewing(client: TestClient, packaged: PackagedRelease, configure: Any) -> Viewing:
    configure(geo_fallback_country="US")
    from drm import keys
    from drm.ratelimit import key_limiter

    keys.reset()
    key_limiter.reset()
    studio = create_studio("Playback Pictures")
    title = create_licensed_title(studio.id, slug=f"film-{uuid.uuid4().hex[:8]}", playable=False)
    install_release(packaged, title.id, studio.id)
    viewer = create_user(f"viewer-{uuid.uuid4().hex[:8]}@example.com")
    headers = auth_header(viewer, device_id="phone-1")
    ticket_id, intent = buy_ticket(client, headers, title.id)
    return Viewing(
        client=client,
        viewer=viewer,
        headers=headers,
        title_id=title.id,
        ticket_id=ticket_id,
        payment_intent_id=intent,
        release_id=str(packaged.release["id"]),
        key_ids=packaged.key_ids,
    )


@dataclass
class LiveServer:
    base_url: str


@pytest.fixture
def live_server(viewing: Viewing, configure: Any) -> Iterator[LiveServer]:
    """The API on a real loopback port (uvicorn in a thread) for real HTTP clients."""
    yield from _live_server(configure)


@pytest.fixture
def drm_live_server(drm_viewing: Viewing, configure: Any) -> Iterator[LiveServer]:
    """The same, for the cbcs release's viewer."""
    yield from _live_server(configure)


@contextmanager
def running_api(configure: Any) -> Iterator[LiveServer]:
    """The API on a real loopback port (uvicorn in a thread) until the block ends."""
    yield from _live_server(configure)


def _live_server(configure: Any) -> Iterator[LiveServer]:
    from api.app import create_app

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    configure(base_url=base)
    assert get_settings().base_url == base
    with served_on_loopback(create_app(), port):
        yield LiveServer(base)


def now_iso() -> str:
    return utcnow().isoformat()
