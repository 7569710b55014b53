"""Heartbeat cost against a ticket's history: a heartbeat on a ticket with a long history (500
sessions, 500 separate covered pieces, 500 heartbeat rows) against one on a fresh ticket, in
the same run, interleaved so both see the same machine load.

    ./run bench heartbeats             # embedded SQLite in a temporary directory
    ./run bench heartbeats --pg        # PostgreSQL (POCKETCINEMA_BENCH_PG), a dedicated database

Each heartbeat is its own transaction, as in the heartbeat route. The last line is one JSON
object; ``ratio`` near 1 means the history costs nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ADMIN = os.environ.get("POCKETCINEMA_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
PIECES = 500
RUNTIME = 7200.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument("--beats", type=int, default=300, help="timed heartbeats per ticket")
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="pc-bench-hb-")
    env = {
        "POCKETCINEMA_MODE": "test",
        "POCKETCINEMA_LOG_LEVEL": "WARNING",
        "POCKETCINEMA_DATA_DIR": scratch,
        # Far above what the timed heartbeats cover, so neither ticket qualifies mid-run.
        "POCKETCINEMA_VIEW_QUALIFY_SECONDS": "100000",
        "POCKETCINEMA_VIEW_QUALIFY_RUNTIME_FRACTION": "1",
    }
    name = f"pc_bench_{uuid.uuid4().hex[:8]}"
    if args.pg:
        import psycopg

        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        env["POCKETCINEMA_DATABASE_URL"] = (
            ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + "/" + name
        )
    os.environ.update(env)
    try:
        result = run(args.beats)
    finally:
        from core.db import dispose_engine

        dispose_engine()
        if args.pg:
            import psycopg

            with psycopg.connect(ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    result["backend"] = "postgresql" if args.pg else "sqlite"
    print(json.dumps(result))


def run(beats: int) -> dict[str, object]:
    from core.settings import reset_settings_cache

    reset_settings_cache()
    from accounts import service as accounts
    from boxoffice import views
    from catalog import service as catalog
    from catalog.models import ReleaseStatus, TerritoryMode
    from core.db import unit_of_work, utcnow
    from pocketcinema import migrate
    from tickets import service as tickets

    migrate.upgrade()
    now = utcnow()
    with unit_of_work() as s:
        studio = accounts.create_studio(s, "Bench Pictures")
        title = catalog.create_title(
            s, studio_id=studio.id, slug="bench", original_title="Bench", original_language="en"
        )
        catalog.add_window(
            s,
            title,
            territory_mode=TerritoryMode.listed,
            countries=["US"],
            starts_at=now - timedelta(days=1),
            ends_at=now + timedelta(days=30),
            prices={"US": (999, "USD")},
        )
        release = catalog.create_release(  # only titles with a ready release are sold
            s, title_id=title.id, studio_id=studio.id, label="Main feature"
        )
        catalog.set_status(release, ReleaseStatus.ready)
        viewer = accounts.create_user(s, "bench@example.com", "correct horse battery")
        ids = {
            "title": title.id,
            "viewer": viewer.id,
        }

    def ticket() -> str:
        with unit_of_work() as s:
            sheet = tickets.purchase(
                s,
                viewer_id=ids["viewer"],
                country="US",
                idempotency_key=str(uuid.uuid4()),
                request=tickets.PurchaseRequest(title_id=ids["title"]),
            )
            return sheet.ticket.id

    def start(ticket_id: str, session_id: str, at: datetime) -> None:
        with unit_of_work() as s:
            views.record_view_started(
                s,
                playback_session_id=session_id,
                ticket_id=ticket_id,
                viewer_id=ids["viewer"],
                title_id=ids["title"],
                territory="US",
                at=at,
            )

    def beat(ticket_id: str, session_id: str, seq: int, at: datetime, position: float) -> None:
        with unit_of_work() as s:
            views.record_heartbeat(
                s,
                playback_session_id=session_id,
                ticket_id=ticket_id,
                viewer_id=ids["viewer"],
                title_id=ids["title"],
                territory="US",
                seq=seq,
                watched_seconds=5.0,
                position_seconds=position,
                at=at,
                runtime_seconds=RUNTIME,
            )

    t0 = now - timedelta(days=1)
    fresh, history = ticket(), ticket()
    for ticket_id in (fresh, history):
        start(ticket_id, f"{ticket_id}-live", t0)
    # The long history: a session per piece, each covering 5 s, 14 s apart.
    for n in range(PIECES):
        start(history, f"{history}-{n}", t0 + timedelta(seconds=10 * n))
        beat(history, f"{history}-{n}", 1, t0 + timedelta(seconds=10 * n + 5), 14.0 * n + 5)
    with unit_of_work() as s:
        pieces = len(views.coverage_of(s, history))

    timings: dict[str, list[float]] = {fresh: [], history: []}
    for seq in range(1, beats + 1):
        at = t0 + timedelta(hours=2, seconds=5 * seq)
        for ticket_id in (fresh, history):  # interleaved: the same load for both
            started = time.perf_counter()
            beat(ticket_id, f"{ticket_id}-live", seq, at, 5.0 * seq)
            timings[ticket_id].append((time.perf_counter() - started) * 1000)
    fresh_ms = statistics.median(timings[fresh])
    history_ms = statistics.median(timings[history])
    return {
        "pieces": pieces,
        "beats": beats,
        "fresh_ticket_ms": round(fresh_ms, 3),
        "long_history_ms": round(history_ms, 3),
        "ratio": round(history_ms / fresh_ms, 3),
    }


if __name__ == "__main__":
    main()
