"""``pocketcinema demo``: the whole business on one machine, through the public HTTP API.

A studio uploads a film with the resumable protocol and the pool encodes it; the studio
opens a licence window for the US and Canada and a festival section; a viewer in the US
sees it (one in France does not), buys a ticket with the sandbox's test card, plays it
through the signed playlists and the key route, sends heartbeats until the view qualifies;
finance rolls up the day and reads the box office.

Every step prints one line. A failing step stops with the reason and a way to fix it.
The only thing done outside HTTP is bootstrapping an admin account in the local database
(as an operator would once, with ``pocketcinema create-user --role admin``).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

DEMO_STUDIO = "Demo Pictures"
DEMO_SLUG = "night-train-to-kunming"
ADMIN_EMAIL = "demo-admin@pocketcinema.local"
STUDIO_EMAIL = "producer@demo-pictures.local"
# Trusted-proxy headers the demo uses to stand in for viewers elsewhere (the demo's own
# serve trusts loopback as a proxy; see POCKETCINEMA_TRUSTED_PROXIES).
US, FRANCE = {"CloudFront-Viewer-Country": "US"}, {"CloudFront-Viewer-Country": "FR"}


class DemoFailed(Exception):
    def __init__(self, step: str, reason: str, fix: str) -> None:
        super().__init__(reason)
        self.step, self.reason, self.fix = step, reason, fix


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)


def say(message: str) -> None:
    print(f"  ✓ {message}", flush=True)


_last_bar = ""


def progress_bar(label: str, fraction: float, extra: str = "") -> None:
    """One redrawn line on a terminal; one line per change when the output is a log."""
    global _last_bar
    width = 30
    done = int(width * max(0.0, min(fraction, 1.0)))
    bar = f"    {label} [{'#' * done}{'.' * (width - done)}] {fraction * 100:5.1f}% {extra}"
    if bar == _last_bar:
        return
    _last_bar = bar
    sys.stdout.write(f"\r{bar}   " if sys.stdout.isatty() else f"{bar}\n")
    sys.stdout.flush()


class Api:
    """A thin client that turns problem+json answers into DemoFailed with the API's words."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url.rstrip("/")
        self.http = httpx.Client(base_url=self.base, timeout=60)

    def call(
        self,
        step: str,
        method: str,
        path: str,
        *,
        token: str | None = None,
        expect: tuple[int, ...] = (200, 201, 202, 204),
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        sent = dict(headers or {})
        if token:
            sent["Authorization"] = f"Bearer {token}"
        response = self.http.request(method, path, headers=sent, **kwargs)
        if response.status_code not in expect:
            try:
                problem = response.json()
                reason = f"{response.status_code} {problem.get('code')}: {problem.get('detail')}"
            except ValueError:
                reason = f"{response.status_code}: {response.text[:200]}"
            raise DemoFailed(
                step,
                reason,
                f"see the API log for request id {response.headers.get('x-request-id')}",
            )
        if response.status_code == 204 or not response.content:
            return None
        if response.headers.get("content-type", "").startswith(
            "application/json"
        ) or response.headers.get("content-type", "").endswith("+json"):
            return response.json()
        return response.content


# --- media -------------------------------------------------------------------------------------


def make_media(folder: Path, seconds: int, ffmpeg: str) -> dict[str, Path]:
    """A 1080p master with texture (not a flat card), a dub, a commentary, two subtitles."""

    def run(*args: str) -> None:
        subprocess.run(
            [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args], check=True
        )

    master = folder / "night-train-master.mov"
    run(
        "-f", "lavfi", "-i", f"testsrc2=s=1920x1080:r=24:d={seconds},noise=alls=12:allf=t",
        "-f", "lavfi", "-i", f"sine=f=220:d={seconds}:sample_rate=48000",
        "-ac", "2", "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "8M", "-maxrate", "10M", "-bufsize", "16M", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-metadata:s:a:0", "language=zho", str(master),
    )  # fmt: skip
    dub = folder / "dub-en.wav"
    run("-f", "lavfi", "-i", f"sine=f=330:d={seconds}:sample_rate=48000", "-ac", "2", str(dub))
    commentary = folder / "commentary-en.wav"
    run(
        "-f",
        "lavfi",
        "-i",
        f"sine=f=440:d={seconds}:sample_rate=48000",
        "-ac",
        "1",
        str(commentary),
    )
    en = folder / "subtitles-en.srt"
    es = folder / "subtitles-es.vtt"
    en_cues, es_cues = [], ["WEBVTT", ""]
    for i, start in enumerate(range(1, seconds - 2, 5), start=1):
        en_cues += [
            str(i),
            f"00:00:{start:02d},000 --> 00:00:{start + 3:02d},000",
            f"The night train, scene {i}.",
            "",
        ]
        es_cues += [
            f"00:00:{start:02d}.000 --> 00:00:{start + 3:02d}.000",
            f"El tren nocturno, escena {i}.",
            "",
        ]
    en.write_text("\n".join(en_cues), encoding="utf-8")
    es.write_text("\n".join(es_cues), encoding="utf-8")
    return {"master": master, "dub": dub, "commentary": commentary, "en": en, "es": es}


def mailed_code(to: str, timeout: float = 90.0) -> str:
    """The code of the mail to ``to`` in the embedded mailbox (POCKETCINEMA_MAIL_OUTBOX_DIR,
    where a service with no SMTP host writes its mails), once the worker pool sent it."""
    from email import policy
    from email.parser import BytesParser

    from core.settings import get_settings

    directory = get_settings().mail_dir
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in directory.glob("*.eml") if directory.is_dir() else []:
            message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
            body = message.get_body(preferencelist=("plain",))
            found = re.search(r"\b(\d{6})\b", body.get_content() if body else "")
            if message["To"] == to and found:
                return found.group(1)
        time.sleep(0.5)
    raise DemoFailed(
        "viewer",
        f"no mail to {to} in {directory} after {timeout:.0f} s",
        "the demo reads codes from the embedded mailbox: run it against a service on this "
        "machine with no POCKETCINEMA_SMTP_HOST, and make sure its worker pool runs",
    )


# --- the journey ---------------------------------------------------------------------------------


class Journey:
    def __init__(self, api: Api, work: Path, seconds: int, ffmpeg: str) -> None:
        self.api = api
        self.work = work
        self.seconds = seconds
        self.ffmpeg = ffmpeg
        self.report = Report()

    def admin_token(self, bootstrap: Callable[[str, str], None]) -> str:
        password = secrets.token_urlsafe(16)
        bootstrap(ADMIN_EMAIL, password)
        return str(
            self.api.call(
                "admin", "POST", "/v1/auth/login", json={"email": ADMIN_EMAIL, "password": password}
            )["access_token"]
        )

    def studio(self, admin: str, bootstrap_password: Callable[[str, str, str], None]) -> str:
        step = "studio"
        created = self.api.call(
            step,
            "POST",
            "/v1/admin/studios",
            token=admin,
            json={"name": DEMO_STUDIO},
            expect=(201, 409),
        )
        password = secrets.token_urlsafe(16)
        if created is not None and "id" in created:
            studio_id = created["id"]
            self.api.call(
                step,
                "POST",
                "/v1/admin/users",
                token=admin,
                json={
                    "email": STUDIO_EMAIL,
                    "password": password,
                    "role": "studio",
                    "studio_id": studio_id,
                },
            )
            say(f"studio {DEMO_STUDIO!r} created with its producer account {STUDIO_EMAIL}")
        else:
            bootstrap_password(STUDIO_EMAIL, password, DEMO_STUDIO)
            say(f"studio {DEMO_STUDIO!r} already exists; signed its producer in again")
        return str(
            self.api.call(
                step, "POST", "/v1/auth/login", json={"email": STUDIO_EMAIL, "password": password}
            )["access_token"]
        )

    def title(self, studio: str) -> tuple[str, bool]:
        """The demo title (created once); returns (id, already has a ready release)."""
        step = "title"
        mine = self.api.call(step, "GET", "/v1/studio/titles", token=studio, params={"limit": 200})
        items = mine["items"] if isinstance(mine, dict) else mine
        existing = next((t for t in items if t["slug"] == DEMO_SLUG), None)
        if existing is None:
            existing = self.api.call(
                step, "POST", "/v1/studio/titles", token=studio,
                json={"slug": DEMO_SLUG, "original_title": "昆明夜车", "original_language": "zh-Hant", "runtime_seconds": self.seconds, "genres": ["drama"]},
            )  # fmt: skip
            for locale, name, synopsis in (
                (
                    "en",
                    "Night Train to Kunming",
                    "Two strangers share a sleeper cabin on the last train south.",
                ),
                ("zh-Hant", "昆明夜車", "兩個陌生人在南下的末班車上共用一個臥鋪。"),
            ):
                self.api.call(
                    step,
                    "PUT",
                    f"/v1/studio/titles/{existing['id']}/localizations/{locale}",
                    token=studio,
                    json={"name": name, "synopsis": synopsis},
                )
            say(f"title {DEMO_SLUG} created with English and Traditional Chinese metadata")
        releases = self.api.call(
            step, "GET", "/v1/studio/releases", token=studio, params={"title_id": existing["id"]}
        )
        return str(existing["id"]), any(r["status"] == "ready" for r in releases)

    def upload(
        self,
        studio: str,
        release_id: str,
        path: Path,
        kind: str,
        language: str | None = None,
        name: str | None = None,
    ) -> None:
        step = f"upload {path.name}"
        data = path.read_bytes()
        upload = self.api.call(
            step,
            "POST",
            f"/v1/studio/releases/{release_id}/uploads",
            token=studio,
            json={
                "kind": kind,
                "filename": path.name,
                "size_bytes": len(data),
                "language": language,
                "name": name,
            },
        )
        size = upload["part_size"]
        parts = [data[i : i + size] for i in range(0, len(data), size)]
        targets = self.api.call(
            step, "POST", f"/v1/studio/uploads/{upload['id']}/part-urls", token=studio,
            json={"parts": [{"number": n, "checksum_sha256": base64.b64encode(hashlib.sha256(p).digest()).decode()} for n, p in enumerate(parts, 1)]},
        )  # fmt: skip
        for target, part in zip(targets, parts, strict=True):
            if target["url"].startswith(self.api.base):
                self.api.call(
                    step,
                    "PUT",
                    target["url"][len(self.api.base) :],
                    token=studio,
                    content=part,
                    headers=target["headers"],
                )
            else:  # presigned: straight to S3, no token
                httpx.put(
                    target["url"], content=part, headers=target["headers"], timeout=300
                ).raise_for_status()
        self.api.call(step, "POST", f"/v1/studio/uploads/{upload['id']}/complete", token=studio)
        say(
            f"uploaded {path.name} ({len(data) / 1e6:.1f} MB in {len(parts)} part{'s' * (len(parts) > 1)}, resumable, checksummed)"
        )

    def transcode(self, studio: str, title_id: str) -> None:
        step = "transcode"
        media = make_media(self.work, self.seconds, self.ffmpeg)
        say(
            f"generated a {self.seconds} s 1080p master with texture, an English dub, a commentary track and en/es subtitles"
        )
        release = self.api.call(
            step,
            "POST",
            f"/v1/studio/titles/{title_id}/releases",
            token=studio,
            json={"label": "Theatrical cut"},
        )
        self.upload(studio, release["id"], media["master"], "master")
        self.upload(studio, release["id"], media["dub"], "audio", "en", "English (dub)")
        self.upload(
            studio, release["id"], media["commentary"], "commentary", "en", "Cultural commentary"
        )
        self.upload(studio, release["id"], media["en"], "subtitle", "en", "English")
        self.upload(studio, release["id"], media["es"], "subtitle", "es", "Español")
        self.api.call(step, "POST", f"/v1/studio/releases/{release['id']}/transcode", token=studio)
        started = time.monotonic()
        state = release
        while time.monotonic() - started < 1800:
            state = self.api.call(step, "GET", f"/v1/studio/releases/{release['id']}", token=studio)
            eta = f"ETA {state['eta_seconds']} s" if state.get("eta_seconds") is not None else ""
            progress_bar(state["status"].ljust(9), state["progress_percent"] / 100, eta)
            if state["status"] in ("ready", "failed"):
                break
            time.sleep(1)
        if sys.stdout.isatty():
            print()
        if state["status"] != "ready":
            raise DemoFailed(
                step,
                f"release {state['status']}: {state.get('failure_reason')}",
                "check the worker log; `pocketcinema serve` runs the pool",
            )
        rungs = ", ".join(v["resolution"] for v in state["outputs"]["variants"])
        say(
            f"transcoded in {time.monotonic() - started:.0f} s: {rungs}; {len(state['outputs']['audio'])} audio and {len(state['outputs']['subtitles'])} subtitle tracks, encrypted"
        )

    def licence(self, studio: str, title_id: str) -> None:
        step = "licence"
        now = datetime.now(UTC)
        title = self.api.call(step, "GET", f"/v1/studio/titles/{title_id}", token=studio)
        if not title.get("windows"):
            self.api.call(
                step, "POST", f"/v1/studio/titles/{title_id}/windows", token=studio,
                json={
                    "territory_mode": "listed", "countries": ["US", "CA"],
                    "starts_at": (now - timedelta(hours=1)).isoformat(), "ends_at": (now + timedelta(days=120)).isoformat(),
                    "prices": [{"country": "US", "amount_minor": 1299, "currency": "USD"}, {"country": "CA", "amount_minor": 1599, "currency": "CAD"}],
                },
            )  # fmt: skip
            collection = self.api.call(
                step, "POST", "/v1/studio/collections", token=studio,
                json={"name": "Online Panorama", "slug": f"online-panorama-{uuid.uuid4().hex[:6]}", "territory_mode": "listed", "countries": ["US", "CA"],
                      "starts_at": (now - timedelta(hours=1)).isoformat(), "ends_at": (now + timedelta(days=120)).isoformat()},
            )  # fmt: skip
            self.api.call(
                step,
                "PUT",
                f"/v1/studio/collections/{collection['id']}/titles/{title_id}",
                token=studio,
            )
        say(
            "licence window open in the US (USD 12.99) and Canada (CAD 15.99) for 4 months, in the festival section 'Online Panorama'"
        )

    def viewer(self) -> tuple[str, str]:
        email = f"viewer-{uuid.uuid4().hex[:8]}@example.com"
        account = {
            "email": email,
            "password": secrets.token_urlsafe(12),
            "device_id": "demo-phone-1",
        }
        # Sign-up answers the same for new and existing addresses and mails a code; the
        # viewer confirms the address with it, which signs in.
        self.api.call("viewer", "POST", "/v1/auth/signup", json=account)
        code = mailed_code(email)
        signed = self.api.call(
            "viewer",
            "POST",
            "/v1/account/email/verify",
            json={"email": email, "code": code, "device_id": account["device_id"]},
        )
        say(f"viewer {email} signed up and confirmed the address with the mailed code {code}")
        return email, str(signed["access_token"])

    def catalog(self, viewer: str, title_id: str) -> None:
        step = "catalog"
        here = self.api.call(
            step, "GET", "/v1/titles", token=viewer, headers={**US, "Accept-Language": "en"}
        )
        listed = next((t for t in here["items"] if t["id"] == title_id), None)
        if listed is None:
            raise DemoFailed(
                step,
                "the title is not on sale in the US",
                "the server must believe the demo's X-Forwarded-For: run it in development mode "
                "(the default, which trusts loopback) or add 127.0.0.1/32 to POCKETCINEMA_TRUSTED_PROXIES",
            )
        away = self.api.call(step, "GET", "/v1/titles", token=viewer, headers=FRANCE)
        if any(t["id"] == title_id for t in away["items"]):
            raise DemoFailed(
                step,
                "the title is on sale in France, where it is not licensed",
                "check the licence window",
            )
        price = listed.get("price") or {}
        say(
            f"catalog from a US address: {listed.get('name') or listed.get('title')} at {price.get('amount_minor', '?')} {price.get('currency', '')}; from France: not listed"
        )

    def buy(self, viewer: str, title_id: str) -> str:
        step = "purchase"
        key = uuid.uuid4().hex
        sheet = self.api.call(
            step,
            "POST",
            "/v1/purchases",
            token=viewer,
            headers={**US, "Idempotency-Key": key},
            json={"title_id": title_id},
        )
        again = self.api.call(
            step,
            "POST",
            "/v1/purchases",
            token=viewer,
            headers={**US, "Idempotency-Key": key},
            json={"title_id": title_id},
        )
        if again["payment_intent_id"] != sheet["payment_intent_id"]:
            raise DemoFailed(
                step, "a double tap created a second payment", "this is a bug; please report it"
            )
        self.api.call(
            step,
            "POST",
            f"/v1/sandbox/payments/{sheet['payment_intent_id']}/confirm",
            token=viewer,
            headers=US,
            json={"payment_method": "pm_card_visa"},
        )
        ticket_id = str(sheet["ticket"]["id"])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ticket = self.api.call(step, "GET", f"/v1/me/tickets/{ticket_id}", token=viewer)
            if ticket["state"] == "active":
                say(
                    f"ticket bought with the sandbox test card: {sheet['amount_minor'] / 100:.2f} {sheet['currency']} (a double tap made no second charge)"
                )
                return ticket_id
            time.sleep(0.5)
        raise DemoFailed(
            step,
            "the ticket did not become active",
            "the sandbox webhook did not arrive; check the API log",
        )

    def watch(self, viewer: str, ticket_id: str) -> None:
        """Start playback, decode the stream with FFmpeg through the signed playlists and the
        key route (as a second player would), then heartbeat until the view qualifies."""
        step = "playback"
        started = self.api.call(
            step,
            "POST",
            "/v1/playback/sessions",
            token=viewer,
            headers={**US, "X-Device-Id": "demo-phone-1"},
            json={"ticket_id": ticket_id},
        )
        url = started["master_playlist_url"]
        master = (
            f"{url if url.startswith('http') else self.api.base + url}?token={started['token']}"
        )
        decoded = subprocess.run(
            [self.ffmpeg, "-nostdin", "-v", "error", "-headers", "CloudFront-Viewer-Country: US\r\nX-Device-Id: demo-phone-1\r\n",
             "-protocol_whitelist", "http,tcp,crypto,hls", "-i", master, "-map", "0:v:0", "-map", "0:a:0", "-f", "framemd5", "-"],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        frames = sum(1 for line in decoded.stdout.splitlines() if line.startswith("0,"))
        if decoded.returncode != 0 or frames == 0:
            raise DemoFailed(
                step,
                f"FFmpeg could not play the stream: {decoded.stderr.strip()[-300:]}",
                "check the API log for the key and playlist requests",
            )
        say(
            f"played the encrypted stream with FFmpeg through the signed playlists and the key route: {frames} frames decoded"
        )
        # A qualified view needs min(10 min, 25 % of runtime) of watching; heartbeats may not
        # claim more than the time since the previous one, so the demo really waits.
        needed = min(600.0, 0.25 * self.seconds) + 1.0
        interval = 2.0
        seq, watched, grant = 0, 0.0, str(started["token"])
        while watched < needed:
            time.sleep(interval)
            seq += 1
            watched += interval
            beat = self.api.call(
                step,
                "POST",
                f"/v1/playback/sessions/{started['session_id']}/heartbeat",
                headers={**US, "Authorization": f"Bearer {grant}"},
                json={"seq": seq, "position_seconds": watched, "watched_seconds": interval},
            )
            grant = str(beat["token"])  # every heartbeat answers with the next grant
            progress_bar("watching ", watched / needed)
        if sys.stdout.isatty():
            print()
        self.api.call(
            step,
            "POST",
            f"/v1/playback/sessions/{started['session_id']}/stop",
            headers={**US, "Authorization": f"Bearer {grant}"},
        )
        say(
            f"sent {seq} heartbeats ({watched:.0f} s watched): the view qualifies (threshold {needed - 1:.1f} s)"
        )

    def box_office(self, finance: str, title_id: str) -> dict[str, Any]:
        step = "box office"
        from zoneinfo import ZoneInfo

        day = datetime.now(ZoneInfo("America/Los_Angeles")).date()  # US days are LA days
        rates = f"Date,USD,CAD,CNY\n{day.isoformat()},1.0800,1.5100,7.8100\n"
        self.api.call(
            step,
            "POST",
            "/v1/finance/fx-rates",
            token=finance,
            content=rates,
            headers={"Content-Type": "text/csv"},
        )
        self.api.call(
            step, "POST", f"/v1/finance/boxoffice/rollups/{day.isoformat()}", token=finance
        )
        report = self.api.call(
            step,
            "GET",
            "/v1/finance/boxoffice/report",
            token=finance,
            params={
                "date_from": day.isoformat(),
                "date_to": day.isoformat(),
                "group_by": "title",
                "title_id": title_id,
            },
        )
        totals = report["totals"]
        usd = totals["converted"].get("USD", {})
        local = (
            ", ".join(f"{m['gross_minor'] / 100:.2f} {m['currency']}" for m in totals["local"])
            or "0"
        )
        payable = usd.get("studio_payable_minor")
        numbers = {
            "day": day.isoformat(),
            "tickets": totals["tickets_sold"],
            "gross": local,
            "qualified_views": totals["qualified_views"],
            "views_started": totals["views_started"],
            "studio_payable_usd": None if payable is None else payable / 100,
        }
        say(f"rolled up {day} (US days are Los Angeles days) with demo FX rates loaded from CSV")
        print(f"\n  Box office for {DEMO_SLUG} on {day}:")
        print(f"    tickets sold     {numbers['tickets']}")
        print(f"    gross            {numbers['gross']}")
        print(f"    views started    {numbers['views_started']}")
        print(f"    qualified views  {numbers['qualified_views']}")
        print(f"    studio payable   {'n/a' if payable is None else f'{payable / 100:.2f} USD'}")
        return numbers


def run_demo(
    url: str | None,
    port: int,
    seconds: int,
    bootstrap: Callable[[str, str], None],
    reset_password: Callable[[str, str, str], None],
) -> dict[str, Any]:
    from core.settings import get_settings

    ffmpeg = get_settings().ffmpeg_path
    with (
        running_server(url, port) as base,
        tempfile.TemporaryDirectory(prefix="pocketcinema-demo-") as work,
    ):
        journey = Journey(Api(base), Path(work), seconds, ffmpeg)
        admin = journey.admin_token(bootstrap)
        studio = journey.studio(admin, reset_password)
        title_id, ready = journey.title(studio)
        if ready:
            say("the title is already transcoded (an earlier run); reusing it")
        else:
            journey.transcode(studio, title_id)
        journey.licence(studio, title_id)
        _, viewer = journey.viewer()
        journey.catalog(viewer, title_id)
        ticket_id = journey.buy(viewer, title_id)
        journey.watch(viewer, ticket_id)
        numbers = journey.box_office(admin, title_id)
        player = f"{base}/play" if url else "http://127.0.0.1:8000/play after `./run serve`"
        print(f"\n  Watch it in a browser: {player} (sign in as any viewer who bought it)")
        return numbers


@contextmanager
def running_server(url: str | None, port: int) -> Iterator[str]:
    """Use the server at ``url``, or start ``pocketcinema serve`` for the demo's duration."""
    if url:
        yield url
        return
    env = {**os.environ, "POCKETCINEMA_TRUSTED_PROXIES": "127.0.0.1/32"}
    base = f"http://127.0.0.1:{port}"
    env.setdefault("POCKETCINEMA_BASE_URL", base)
    log = tempfile.NamedTemporaryFile(prefix="pocketcinema-demo-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "pocketcinema", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None:
                raise DemoFailed(
                    "serve", f"serve exited with {process.returncode}", f"see {log.name}"
                )
            time.sleep(0.3)
        else:
            raise DemoFailed("serve", "serve did not become ready in 60 s", f"see {log.name}")
        say(f"started the service on {base} (log: {log.name})")
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
