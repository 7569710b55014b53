"""The studio portal's journey in Chromium against the real API, database, storage and
transcoding pipeline: sign in, create a title, upload a generated master in small parts
(interrupted: a reload mid-upload and dropped connections, then resumed with only the
missing parts), follow encoding until ready, review tracks, open a licence window with a
price, see a sale in the box office. Screenshots at 1280 and 375 px."""

from __future__ import annotations

import json
import shutil
import threading
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from accounts.models import Role
from boxoffice import service as boxoffice
from core.db import unit_of_work, utcnow
from tests.conftest import Configure
from tests.helpers import PASSWORD, auth_header, create_studio, create_user
from tests.playback.conftest import FAST_PROFILE, LiveServer, _run_pipeline, buy_ticket
from tests.transcoding.conftest import ffmpeg
from transcoding import service as transcoding

pytestmark = pytest.mark.backend_agnostic

PART_SIZE = 5 * 1024 * 1024  # the smallest part the settings allow (S3's minimum)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screens"
PART_URLS = "**/v1/studio/uploads/*/part-urls"


@pytest.fixture
def studio_settings(configure: Configure, tmp_path: Path) -> Path:
    """Small parts (so a few seconds of master make several), the fast CI ladder, US buyers."""
    profile = tmp_path / "ladder.json"
    profile.write_text(json.dumps(FAST_PROFILE))
    configure(
        multipart_part_size=str(PART_SIZE),
        ladder_profile_file=str(profile),
        geo_fallback_country="US",
    )
    master = tmp_path / "master.mp4"
    # Lossless noise: 2 s at 640x360 is ~21 MB, four or five parts of 5 MiB.
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=s=640x360:r=24:d=2,noise=alls=60:allf=t",
        "-f", "lavfi", "-i", "sine=f=440:d=2:sample_rate=48000",
        "-ac", "2", "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-g", "24",
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(master),
    )  # fmt: skip
    assert master.stat().st_size > 3 * PART_SIZE
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=200x300",
        "-frames:v",
        "1",
        "-c:v",
        "mjpeg",
        "-pix_fmt",
        "yuvj420p",
        str(tmp_path / "poster.jpg"),
    )
    return master


def sign_in(page: Any, base_url: str, email: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"{base_url}/studio")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Titles")).to_be_visible()


class PartTraffic:
    """Stands between the page and ``part-urls`` (where to PUT a part): lets the first
    ``allow`` parts through and drops the rest (a connection reset), or, with ``allow`` None,
    drops ``drop_once`` requests and then lets everything through. Only these small JSON
    requests are intercepted; the parts themselves travel untouched and are only watched."""

    def __init__(self, allow: int | None, drop_once: int = 0) -> None:
        self.allow = allow
        self.drop_once = drop_once
        self.passed: list[int] = []
        self.dropped: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, route: Any) -> None:
        number = int(route.request.post_data_json["parts"][0]["number"])
        with self.lock:
            if self.allow is not None:
                drop = len(self.passed) >= self.allow
            else:
                drop = self.drop_once > 0
                self.drop_once -= int(drop)
            (self.dropped if drop else self.passed).append(number)
        if drop:
            route.abort("connectionreset")
        else:
            route.continue_()


def parts_sent(page: Any) -> list[int]:
    """The part numbers the page PUTs from now on (watched, not intercepted)."""
    sent: list[int] = []

    def watch(request: Any) -> None:
        if request.method == "PUT" and "/parts/" in request.url:
            sent.append(int(request.url.rsplit("/", 1)[1]))

    page.on("request", watch)
    return sent


def shoot(page: Any, screenshot: Any, name: str, docs: bool = False) -> None:
    path = screenshot(page, name)
    if docs:
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS / f"{name}.png")


def test_studio_journey(
    studio_settings: Path, web: LiveServer, page_for: Any, screenshot: Any
) -> None:
    from playwright.sync_api import expect

    master = studio_settings
    studio = create_studio("Lantern Pictures")
    producer = create_user(f"producer-{uuid.uuid4().hex[:6]}@example.com", Role.studio, studio.id)
    page = page_for(width=1280)
    sign_in(page, web.base_url, producer.email)

    # A title with metadata and a poster in one more language.
    page.get_by_label("Slug").fill("the-lantern-keeper")
    page.get_by_label("Original title").fill("The Lantern Keeper")
    page.get_by_role("button", name="Create title").click()
    expect(page.get_by_role("heading", name="The Lantern Keeper")).to_be_visible()
    title_id = page.url.rsplit("/", 1)[1]
    page.get_by_label("Language tag").fill("es")
    page.get_by_label("Title in this language", exact=True).last.fill("El farolero")
    page.get_by_role("button", name="Add language").click()
    spanish = page.locator("form.localization[data-locale='es']")
    expect(spanish).to_be_visible()
    spanish.get_by_label("Poster").set_input_files(str(master.with_name("poster.jpg")))
    expect(spanish.locator("img.poster")).to_be_visible()
    shoot(page, screenshot, "studio-title-1280")

    # A release, and its master uploaded: two parts arrive, then the connection drops.
    page.get_by_role("button", name="New release").click()
    expect(page.get_by_role("heading", name="Upload the master")).to_be_visible()
    release_id = page.url.rsplit("/", 1)[1]
    parts = -(-master.stat().st_size // PART_SIZE)
    first = PartTraffic(allow=2)
    page.route(PART_URLS, first)
    before_reload = parts_sent(page)
    page.get_by_label("Master file").set_input_files(str(master))
    expect(page.locator(".upload .figures")).to_contain_text(f"parts 2/{parts}", timeout=20_000)
    expect(page.get_by_text("Connection lost on part")).to_be_visible()
    shoot(page, screenshot, "studio-upload-1280", docs=True)

    # The page is reloaded mid-upload; the same file is chosen again and only the four
    # missing parts are sent (one of them twice: its first try is dropped too).
    page.reload()  # the old page's retries end here, still refused
    sent_before_reload = sorted(before_reload)
    page.unroute(PART_URLS)
    second = PartTraffic(allow=None, drop_once=1)
    page.route(PART_URLS, second)
    after_reload = parts_sent(page)
    expect(page.locator(".resume-hint")).to_contain_text("master.mp4")
    page.get_by_label("Master file").set_input_files(str(master))
    expect(page.locator(".resume-hint")).to_contain_text(
        "2 parts were already received", timeout=20_000
    )
    expect(page.locator(".upload .figures")).to_contain_text("Upload complete", timeout=30_000)
    assert sent_before_reload == sorted(first.passed)
    assert len(first.passed) == 2
    assert sorted(after_reload) == sorted(set(range(1, parts + 1)) - set(first.passed))
    assert len(second.dropped) == 1
    assert second.dropped[0] in second.passed
    page.unroute(PART_URLS)

    # Transcoding runs (the pipeline's own jobs, in-process) while the page follows it.
    pipeline = threading.Thread(target=_run_pipeline, args=(release_id, 180), daemon=True)
    pipeline.start()
    expect(page.locator(".progress-card")).to_be_visible()
    shoot(page, screenshot, "studio-release-progress-1280")
    expect(page.locator(".progress-card [data-status='ready']")).to_be_visible(timeout=120_000)
    pipeline.join(timeout=10)

    # The detected tracks can be relabelled.
    audio = page.locator("table.tracks tbody tr").first
    expect(audio).to_be_visible()
    audio.get_by_label("Name").fill("English (original)")
    audio.get_by_role("button", name="Save").click()
    expect(audio.get_by_text("Saved")).to_be_visible()
    shoot(page, screenshot, "studio-release-1280", docs=True)

    # A licence window in the US at $4.99; the client refuses a price outside the territory
    # and a second, overlapping window comes back refused by the API, shown in its row.
    page.goto(f"{web.base_url}/studio#/titles/{title_id}/windows")
    row = page.locator("table.windows tbody tr").first
    row.get_by_label("Countries").fill("US")
    row.get_by_label("Prices").fill("US 4.99 USD, FR 3.99 EUR")
    row.get_by_role("button", name="Save").click()
    expect(row.locator(".row-result")).to_contain_text("price_outside_territory")
    row.get_by_label("Prices").fill("US 4.99 USD")
    row.get_by_role("button", name="Save").click()
    expect(row.locator(".row-result")).to_contain_text("Saved")
    page.get_by_role("button", name="Add window").click()
    overlap = page.locator("table.windows tbody tr").nth(1)
    overlap.get_by_label("Countries").fill("US, CA")
    overlap.get_by_role("button", name="Save").click()
    expect(overlap.locator(".row-result")).to_contain_text("window_overlap")
    shoot(page, screenshot, "studio-windows-1280", docs=True)

    # A viewer buys a ticket (sandbox card); the day is rolled up; the numbers show it.
    viewer = create_user(f"viewer-{uuid.uuid4().hex[:6]}@example.com")
    from api.app import create_app

    with TestClient(create_app(), raise_server_exceptions=False) as client:
        buy_ticket(client, auth_header(viewer, device_id="phone-1"), title_id)
    today = utcnow().date()
    days = (today - timedelta(days=1), today, today + timedelta(days=1))
    with unit_of_work() as session:  # the day's FX rate (for the chart's gross), then roll-ups
        boxoffice.load_rates(
            session, "Date,USD\n" + "".join(f"{d},1.08\n" for d in days), source="test"
        )
        for day in days:
            boxoffice.rollup_day(session, day)
    page.goto(f"{web.base_url}/studio#/boxoffice")
    sale = page.locator("table tbody tr", has_text="$4.99")
    expect(sale).to_contain_text("The Lantern Keeper", timeout=20_000)
    expect(sale).to_contain_text("US")
    expect(page.locator("p.totals")).to_contain_text("1 tickets")
    expect(page.locator("figure.chart img")).to_be_visible()
    shoot(page, screenshot, "studio-boxoffice-1280", docs=True)

    # A collection restricted to listed countries: the page asks for at least one first.
    page.goto(f"{web.base_url}/studio#/collections")
    page.get_by_label("Slug").fill("midnight")
    page.get_by_label("Name").fill("Midnight Section")
    page.get_by_label("Territories").select_option("listed")
    page.get_by_role("button", name="Create collection").click()
    expect(page.get_by_text("(territories_empty)")).to_be_visible()
    page.get_by_label("Countries").fill("US, CA")
    page.get_by_role("button", name="Create collection").click()
    page.get_by_role("button", name="Add title").click()
    expect(page.locator("table tbody tr", has_text="Midnight Section")).to_contain_text(
        "The Lantern Keeper"
    )

    # The delivery log lists the release.ready notification.
    page.goto(f"{web.base_url}/studio#/webhook")
    expect(page.locator("table tbody tr", has_text="release.ready")).to_be_visible(timeout=10_000)
    page.goto(f"{web.base_url}/studio#/titles")
    expect(page.get_by_role("link", name="The Lantern Keeper")).to_be_visible()
    shoot(page, screenshot, "studio-titles-1280")

    # Phone width: the same pages, and an upload in progress on a second release.
    parts = -(-master.stat().st_size // PART_SIZE)
    phone = page
    phone.set_viewport_size({"width": 375, "height": 900})
    shoot(phone, screenshot, "studio-titles-375")
    phone.goto(f"{web.base_url}/studio#/releases/{release_id}")
    expect(phone.locator(".progress-card [data-status='ready']")).to_be_visible()
    shoot(phone, screenshot, "studio-release-375")
    phone.goto(f"{web.base_url}/studio#/titles/{title_id}")
    phone.get_by_role("button", name="New release").click()
    expect(phone.get_by_role("heading", name="Upload the master")).to_be_visible()
    phone.route(PART_URLS, PartTraffic(allow=1))
    phone.get_by_label("Master file").set_input_files(str(master))
    expect(phone.locator(".upload .figures")).to_contain_text(f"parts 1/{parts}", timeout=20_000)
    shoot(phone, screenshot, "studio-upload-375")
    phone.goto(f"{web.base_url}/studio#/titles/{title_id}/windows")
    expect(phone.locator("table.windows tbody tr").first).to_be_visible()
    shoot(phone, screenshot, "studio-windows-375")
    phone.goto(f"{web.base_url}/studio#/boxoffice")
    expect(phone.locator("table tbody tr", has_text="$4.99")).to_be_visible(timeout=20_000)
    shoot(phone, screenshot, "studio-boxoffice-375")

    # A failure the studio can act on: the run stalled; Retry queues the release again.
    with unit_of_work() as session:
        transcoding.fail_release(
            session,
            release_id,
            None,
            "stalled",
            "The transcode made no progress for 900 s while encoding; it was stopped. "
            "Start the transcode again.",
        )
    phone.goto(f"{web.base_url}/studio#/releases/{release_id}")
    failure = phone.locator(".failure")
    expect(failure).to_contain_text("(stalled)")
    shoot(phone, screenshot, "studio-release-failed-375")
    failure.get_by_role("button", name="Retry").click()
    expect(phone.locator(".progress-card [data-status='queued']")).to_be_visible()
