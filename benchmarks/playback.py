"""Playback hot paths: variant playlist and key requests per second and p99, on the embedded
default (SQLite) and on PostgreSQL when one is reachable, each next to a bare ASGI endpoint
measured in the same run. Also the time to sign a 2-hour (1,200-segment) variant playlist.

Load comes from this process (asyncio + httpx, 32 connections) to one uvicorn process on
loopback; every phase is bounded in time (BENCH_SECONDS, default 5) and count.
Last line: one JSON object with playlist_rps, key_rps, p99_ms and ratio_to_bare.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
CONNECTIONS = 32
MAX_REQUESTS = 200_000
PG = os.environ.get("POCKETCINEMA_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def signing_time_ms() -> tuple[float, float]:
    from core.settings import Settings
    from drm.playlists import SessionUrls, compile_playlist, render
    from drm.urls import api_signer

    lines = [
        "#EXTM3U",
        "#EXT-X-TARGETDURATION:6",
        '#EXT-X-MAP:URI="v/init.mp4"',
        '#EXT-X-KEY:METHOD=AES-128,URI="http://x/v1/playback/keys/' + "ab" * 16 + '"',
    ]
    for n in range(1200):
        lines += ["#EXTINF:6.000,", f"v/seg_{n:05d}.m4s"]
    template = compile_playlist("\n".join(lines) + "\n#EXT-X-ENDLIST\n", "v.m3u8")
    settings = Settings()
    times = []
    for _ in range(200):
        start = time.perf_counter()
        sid = uuid.uuid4().hex
        render(template, SessionUrls(sid, api_signer(sid, settings=settings)))
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1]


def setup_data(env: dict[str, str]) -> dict[str, Any]:
    """A viewer with 64 live sessions on a title whose release has a 1,200-segment playlist."""
    os.environ.update(env)
    from core.db import dispose_engine, unit_of_work
    from core.settings import reset_settings_cache

    reset_settings_cache()
    dispose_engine()
    from fastapi.testclient import TestClient

    from accounts import service as accounts
    from accounts.models import Role
    from api.app import create_app
    from catalog import service as catalog
    from catalog.models import TerritoryMode
    from catalog.releases import Release, ReleaseStatus
    from core.db import utcnow
    from core.storage import get_store
    from drm import keys
    from pocketcinema import migrate

    keys.reset()  # the previous run's key-encryption key file is not this one's
    migrate.upgrade()
    from datetime import timedelta

    with unit_of_work() as s:
        studio = accounts.create_studio(s, f"Bench {uuid.uuid4().hex[:6]}")
        title = catalog.create_title(
            s,
            studio_id=studio.id,
            slug=f"bench-{uuid.uuid4().hex[:6]}",
            original_title="Bench",
            original_language="en",
        )
        now = utcnow()
        catalog.add_window(
            s,
            title,
            territory_mode=TerritoryMode.listed,
            countries=["US"],
            starts_at=now - timedelta(days=1),
            ends_at=now + timedelta(days=30),
            prices={"US": (999, "USD")},
        )
        release = Release(
            title_id=title.id,
            studio_id=studio.id,
            label="Bench",
            status=ReleaseStatus.ready,
            ready_at=now,
            duration_seconds=7200.0,
        )
        s.add(release)
        s.flush()
        key = keys.create_content_key(s, release.id)
        prefix = f"hls/{release.id}/1"
        release.hls_prefix, release.master_playlist_key = prefix, f"{prefix}/master.m3u8"
        release.content_key_id = key.key_id
        release.outputs = {"audio": [], "subtitles": [], "variants": []}
        viewer = accounts.create_user(
            s,
            f"bench-{uuid.uuid4().hex[:6]}@example.com",
            "correct horse battery",
            Role.viewer,
            None,
        )
        title_id, key_id = title.id, key.key_id
    store = get_store()
    variant = [
        "#EXTM3U",
        "#EXT-X-TARGETDURATION:6",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        '#EXT-X-MAP:URI="v/init.mp4"',
        f'#EXT-X-KEY:METHOD=AES-128,URI="http://x/v1/playback/keys/{key_id}",KEYFORMAT="identity"',
    ]
    for n in range(1200):
        variant += ["#EXTINF:6.000,", f"v/seg_{n:05d}.m4s"]
    store.put_bytes(f"{prefix}/v.m3u8", ("\n".join(variant) + "\n#EXT-X-ENDLIST\n").encode())
    store.put_bytes(
        f"{prefix}/master.m3u8", b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000000\nv.m3u8\n"
    )
    sessions = []
    with TestClient(create_app()) as client:
        for n in range(64):
            headers = {"Authorization": f"Bearer {accounts.issue_access_token(viewer, f'dev-{n}')}"}
            bought = client.post(
                "/v1/purchases",
                json={"title_id": title_id},
                headers=headers | {"Idempotency-Key": uuid.uuid4().hex},
            )
            intent = bought.json()["payment_intent_id"]
            client.post(
                f"/v1/sandbox/payments/{intent}/confirm",
                json={"payment_method": "pm_card_visa"},
                headers=headers,
            )
            started = client.post(
                "/v1/playback/sessions",
                json={"ticket_id": bought.json()["ticket"]["id"]},
                headers=headers,
            )
            assert started.status_code == 201, started.text
            sessions.append(started.json())
    dispose_engine()
    return {"sessions": sessions, "key_id": key_id}


async def load(urls: list[tuple[str, dict[str, str]]]) -> tuple[float, float, int]:
    import httpx

    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + SECONDS
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    async with httpx.AsyncClient(limits=limits, timeout=10, trust_env=False) as client:

        async def worker(offset: int) -> None:
            nonlocal errors
            n = offset
            while time.monotonic() < deadline and len(latencies) < MAX_REQUESTS:
                url, headers = urls[n % len(urls)]
                n += CONNECTIONS
                start = time.perf_counter()
                response = await client.get(url, headers=headers)
                latencies.append(time.perf_counter() - start)
                if response.status_code != 200:
                    errors += 1

        start = time.monotonic()
        await asyncio.gather(*(worker(i) for i in range(CONNECTIONS)))
        elapsed = time.monotonic() - start
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000 if latencies else 0.0
    return len(latencies) / elapsed, p99, errors


def serve(app: str, env: dict[str, str], factory: bool) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    if factory:
        argv.append("--factory")
    proc = subprocess.Popen(argv, cwd=ROOT, env=os.environ | env)
    base = f"http://127.0.0.1:{port}"
    import httpx

    for _ in range(100):
        try:
            httpx.get(base + "/", timeout=0.5, trust_env=False)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    return proc, base


def measure(name: str, env: dict[str, str]) -> dict[str, Any]:
    data = setup_data(env)
    bare_proc, bare = serve("benchmarks._bare:app", env, factory=False)
    try:
        bare_rps, bare_p99, _ = asyncio.run(load([(bare + "/", {})]))
    finally:
        bare_proc.terminate()
        bare_proc.wait()
    proc, base = serve("api.app:create_app", env, factory=True)
    try:
        keys = [
            (
                f"{base}/v1/playback/sessions/{s['session_id']}/keys/{data['key_id']}",
                {"Authorization": f"Bearer {s['token']}"},
            )
            for s in data["sessions"]
        ]
        lists = [
            (
                f"{base}/v1/playback/sessions/{s['session_id']}/playlists/v.m3u8",
                {"Authorization": f"Bearer {s['token']}"},
            )
            for s in data["sessions"]
        ]
        key_rps, key_p99, key_err = asyncio.run(load(keys))
        list_rps, list_p99, list_err = asyncio.run(load(lists))
    finally:
        proc.terminate()
        proc.wait()
    result = {
        "db": name,
        "bare_rps": round(bare_rps),
        "bare_p99_ms": round(bare_p99, 2),
        "key_rps": round(key_rps),
        "key_p99_ms": round(key_p99, 2),
        "key_errors": key_err,
        "playlist_rps": round(list_rps),
        "playlist_p99_ms": round(list_p99, 2),
        "playlist_errors": list_err,
        "key_ratio_to_bare": round(key_rps / bare_rps, 3),
    }
    print(json.dumps(result))
    return result


def main() -> None:
    sys.path.insert(0, str(ROOT))
    common = {
        "POCKETCINEMA_MODE": "test",
        "POCKETCINEMA_LOG_LEVEL": "WARNING",
        "POCKETCINEMA_GEO_FALLBACK_COUNTRY": "US",
        "POCKETCINEMA_PLAYBACK_KEY_REQUESTS_PER_MINUTE": "10000",
    }
    median, p99 = signing_time_ms()
    print(
        json.dumps({"signing_1200_segments_ms": {"median": round(median, 2), "p99": round(p99, 2)}})
    )
    runs = [
        measure("sqlite", common | {"POCKETCINEMA_DATA_DIR": tempfile.mkdtemp(prefix="bench-")})
    ]
    try:
        import psycopg

        name = f"pc_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG, autocommit=True, connect_timeout=2) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = PG.rsplit("/", 1)[0] + f"/{name}"
        try:
            runs.append(
                measure(
                    "postgresql",
                    common
                    | {
                        "POCKETCINEMA_DATA_DIR": tempfile.mkdtemp(prefix="bench-"),
                        "POCKETCINEMA_DATABASE_URL": url,
                    },
                )
            )
        finally:
            from core.db import dispose_engine

            dispose_engine()
            with psycopg.connect(PG, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except Exception as exc:  # PostgreSQL is optional for this benchmark
        print(json.dumps({"postgresql": f"skipped: {exc.__class__.__name__}: {exc}"[:200]}))
    embedded = runs[0]
    print(
        json.dumps(
            {
                "playlist_rps": embedded["playlist_rps"],
                "key_rps": embedded["key_rps"],
                "p99_ms": max(embedded["key_p99_ms"], embedded["playlist_p99_ms"]),
                "ratio_to_bare": embedded["key_ratio_to_bare"],
                "signing_1200_segments_ms": round(median, 2),
                "postgresql": {k: v for k, v in runs[1].items() if k != "db"}
                if len(runs) > 1
                else None,
            }
        )
    )


if __name__ == "__main__":
    main()
