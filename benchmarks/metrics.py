"""What one read of the business figures behind /metrics costs on PostgreSQL, against the
cheapest query there is (one ticket by primary key) measured in the same run.

    ./run bench metrics                 # 1,000,000 tickets, 600,000 qualified views,
                                        # 1,000,000 outbox jobs, 1,000,000 playback sessions
    ./run bench metrics --scale 0.05    # a quick smoke run

Creates a dedicated database (POCKETCINEMA_BENCH_PG, default postgresql://postgres@127.0.0.1:5432),
fills it with generate_series, and drops it at the end. The last line is one JSON object.
A read happens at most once per POCKETCINEMA_METRICS_CACHE_SECONDS per API process; every
other scrape reuses it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ADMIN = os.environ.get("POCKETCINEMA_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full size")
    args = parser.parse_args()
    tickets = max(int(1_000_000 * args.scale), 100)
    name = f"pc_bench_{uuid.uuid4().hex[:8]}"
    url = ADMIN.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        result = run(url, tickets)
    finally:
        from core.db import dispose_engine

        dispose_engine()
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(json.dumps(result))


def run(url: str, tickets: int) -> dict[str, object]:
    os.environ.update(
        {
            "POCKETCINEMA_DATABASE_URL": url,
            "POCKETCINEMA_MODE": "test",
            "POCKETCINEMA_LOG_LEVEL": "WARNING",
            "POCKETCINEMA_DATA_DIR": str(ROOT / "var" / "bench"),
        }
    )
    from core.settings import reset_settings_cache

    reset_settings_cache()
    from pocketcinema import migrate

    migrate.upgrade()
    t0 = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        fill(conn, tickets)
        conn.execute("VACUUM ANALYZE")
    print(
        f"generated {tickets} tickets and friends in {time.perf_counter() - t0:.1f}s",
        file=sys.stderr,
    )

    from sqlalchemy import select

    from api.metrics import AppendOnlyTally, read_business_metrics
    from core.db import read_only
    from tickets.models import Ticket

    def baseline() -> None:
        with read_only() as session:
            session.scalar(select(Ticket.state).where(Ticket.id == "k42"))

    def median_ms(fn: object, rounds: int) -> float:
        assert callable(fn)
        fn()  # warm: connection pool, plan cache
        samples = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - t0) * 1000)
        return statistics.median(samples)

    base_ms = median_ms(baseline, 50)
    # The first read of a process folds every settled row into its tally (once); each later
    # read ranges over the rows written since.
    tally = AppendOnlyTally()
    t0 = time.perf_counter()
    read_business_metrics(tally)
    first_ms = (time.perf_counter() - t0) * 1000
    read_ms = median_ms(lambda: read_business_metrics(tally), 7)
    figures = {m.name: [s.value for s in m.samples] for m in read_business_metrics(tally)}
    print(
        f"first read of a process: {first_ms:.0f} ms = {first_ms / base_ms:.0f}x a "
        f"primary-key fetch ({base_ms:.2f} ms); every later read: {read_ms:.1f} ms = "
        f"{read_ms / base_ms:.1f}x",
        file=sys.stderr,
    )
    return {
        "tickets": tickets,
        "qualified_views": int(sum(figures["pocketcinema_qualified_views"])),
        "outbox_backlog": int(sum(figures["pocketcinema_outbox_backlog"])),
        "active_sessions": int(sum(figures["pocketcinema_playback_sessions_active"])),
        "pk_fetch_ms": round(base_ms, 2),
        "first_read_ms": round(first_ms, 1),
        "first_read_vs_pk_fetch": round(first_ms / base_ms, 1),
        "read_ms": round(read_ms, 1),
        "read_vs_pk_fetch": round(read_ms / base_ms, 1),
    }


def fill(conn: psycopg.Connection, tickets: int) -> None:
    """A studio, 200 titles, a release, tickets (3 % declined, 3 % refunded), a sale per paid
    ticket and a refund row for the refunded, qualified views for 60 %, one ended playback
    session per ticket (0.1 % still live), and as many outbox jobs (finished but 1 %, of
    which a tenth failed)."""
    viewers = max(tickets // 4, 10)
    currencies = "ARRAY['USD','CAD','EUR','GBP','JPY','CNY']"
    sql = f"""
    INSERT INTO studio (id, name, created_at) VALUES ('s0', 'Bench Studio', now());
    INSERT INTO title (id, studio_id, slug, original_title, original_language, search_text, created_at)
      SELECT 't' || i, 's0', 'title-' || i, 'Title ' || i, 'en', '', now() FROM generate_series(1, 200) i;
    INSERT INTO release (id, title_id, studio_id, label, status, attempt, progress, outputs,
      warnings, status_changed_at, created_at)
      VALUES ('r0', 't1', 's0', 'Main feature', 'ready', 1, 1.0, '{{}}', '[]', now(), now());
    INSERT INTO user_account (id, email, password_hash, role, created_at)
      SELECT 'u' || i, 'u' || i || '@bench', 'x', 'viewer', now() FROM generate_series(1, {viewers}) i;
    CREATE TEMP TABLE tk AS SELECT i, 'k' || i AS id, 'u' || (1 + (i * 7919) % {viewers}) AS viewer_id,
      't' || (1 + i % 200) AS title_id, ({currencies})[1 + i % 6] AS currency,
      now() - ((i * 104729) % 31536000) * interval '1 second' AS paid_at
      FROM generate_series(1::bigint, {tickets}) i;
    INSERT INTO ticket (id, viewer_id, title_id, idempotency_key, request_fingerprint, territory,
      price_minor, currency, licence_window_id, state, provider, payment_intent_id,
      start_within_hours, watch_hours, paid_at, created_at, updated_at)
      SELECT id, viewer_id, title_id, id, 'f', 'US', 1299, currency, 'w',
             CASE i % 33 WHEN 1 THEN 'failed' WHEN 2 THEN 'refunded' ELSE 'active' END, 'sandbox',
             'pi_' || id, 720, 48,
             paid_at, paid_at, paid_at FROM tk;
    INSERT INTO ledger_entry (id, ticket_id, title_id, territory, currency, amount_minor, kind,
      provider, provider_reference, occurred_at, created_at)
      SELECT 'l' || i, id, title_id, 'US', currency, 1299, 'sale', 'sandbox', 'pi_' || id, paid_at, paid_at
      FROM tk WHERE i % 33 <> 1;
    INSERT INTO ledger_entry (id, ticket_id, title_id, territory, currency, amount_minor, kind,
      provider, provider_reference, occurred_at, created_at)
      SELECT 'f' || i, id, title_id, 'US', currency, -1299, 'refund', 'sandbox', 're_' || id,
             paid_at + interval '1 day', paid_at FROM tk WHERE i % 33 = 2;
    INSERT INTO qualified_view (id, ticket_id, viewer_id, title_id, territory, playback_session_id,
      qualified_at, watched_seconds, threshold_seconds, created_at)
      SELECT 'q' || i, id, viewer_id, title_id, 'US', 'ps' || i, paid_at, 600, 600, paid_at
      FROM tk WHERE i % 5 < 3;
    INSERT INTO playback_session (id, ticket_id, viewer_id, title_id, release_id, device_id, country,
      started_at, last_heartbeat_at, ended_at, end_reason, position_seconds, created_at)
      SELECT 'ps' || i, id, viewer_id, title_id, 'r0', 'd', 'US', paid_at,
             CASE WHEN i % 1000 = 0 THEN now() + interval '1 day' ELSE paid_at + interval '1 hour' END,
             CASE WHEN i % 1000 = 0 THEN NULL ELSE paid_at + interval '1 hour' END,
             CASE WHEN i % 1000 = 0 THEN NULL ELSE 'stopped' END, 0, paid_at
      FROM tk;
    INSERT INTO outbox_job (id, task, args, queue, created_at, available_at, published_at,
      publish_count, attempts, finished_at, failed_at)
      SELECT 'j' || i, (ARRAY['catalog.title.index','transcoding.chunk.encode',
                              'transcoding.release.notify','boxoffice.rollup.pending'])[1 + i % 4],
             '{{}}', 'default', paid_at, paid_at, paid_at, 1, 1,
             CASE WHEN i % 100 = 0 THEN NULL ELSE paid_at END,
             CASE WHEN i % 1000 = 0 THEN paid_at END
      FROM tk;
    """
    conn.execute(sql)  # our own generated SQL of constants


if __name__ == "__main__":
    main()
