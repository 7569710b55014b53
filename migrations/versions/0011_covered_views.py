"""covered views: heartbeats credit content ranges; tickets keep their union

Revision ID: 0011
Revises: 0015
Create Date: 2026-12-02 13:30:00

Existing heartbeats get the range they would have credited (``credited_seconds`` ending at
their ``position_seconds``) and each ticket's union is rebuilt from them, so the stored union
and the heartbeat facts agree from the start (boxoffice.views.covered_from_facts).
Qualified views already recorded stay as they are: the past is never edited.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import groupby

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("view_heartbeat") as batch:
        batch.add_column(
            sa.Column(
                "covered_from_ms", sa.BigInteger(), server_default=sa.text("0"), nullable=False
            )
        )
        batch.add_column(
            sa.Column("covered_to_ms", sa.BigInteger(), server_default=sa.text("0"), nullable=False)
        )
        batch.add_column(
            sa.Column("outside_territory", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch.create_index("ix_view_heartbeat_session_at", ["playback_session_id", "at"])
    with op.batch_alter_table("ticket_watch") as batch:
        batch.add_column(
            sa.Column("intervals", sa.JSON(), server_default=sa.text("'[]'"), nullable=False)
        )
        batch.add_column(sa.Column("latest_at", core.db.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table("view_start") as batch:
        batch.create_index("ix_view_start_ticket_id_started_at", ["ticket_id", "started_at"])
    _backfill()


def _backfill() -> None:
    op.execute(
        """
        UPDATE view_heartbeat SET
          covered_from_ms = CAST(CASE WHEN position_seconds > credited_seconds
                                      THEN (position_seconds - credited_seconds) * 1000
                                      ELSE 0 END AS BIGINT),
          covered_to_ms = CAST(position_seconds * 1000 AS BIGINT)
        WHERE credited_seconds > 0
        """
    )
    op.execute("UPDATE ticket_watch SET latest_at = updated_at")
    bind = op.get_bind()
    watch = sa.table(
        "ticket_watch",
        sa.column("ticket_id", sa.String()),
        sa.column("intervals", sa.JSON()),
        sa.column("watched_seconds", sa.Float()),
    )
    rows = bind.execute(
        sa.text(
            "SELECT ticket_id, covered_from_ms, covered_to_ms FROM view_heartbeat"
            " WHERE covered_to_ms > covered_from_ms ORDER BY ticket_id, covered_from_ms"
        )
    )
    for ticket_id, ranges in groupby(rows, key=lambda r: r[0]):
        merged = list(_union((int(r[1]), int(r[2])) for r in ranges))
        bind.execute(
            watch.update()
            .where(watch.c.ticket_id == ticket_id)
            .values(
                intervals=[[a, b] for a, b in merged],
                watched_seconds=sum(b - a for a, b in merged) / 1000,
            )
        )


def _union(ranges: Iterator[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """Merge ranges sorted by start into disjoint, non-touching ones."""
    current: tuple[int, int] | None = None
    for start, end in ranges:
        if current is not None and start <= current[1]:
            current = (current[0], max(current[1], end))
            continue
        if current is not None:
            yield current
        current = (start, end)
    if current is not None:
        yield current


def downgrade() -> None:
    with op.batch_alter_table("view_start") as batch:
        batch.drop_index("ix_view_start_ticket_id_started_at")
    with op.batch_alter_table("ticket_watch") as batch:
        batch.drop_column("latest_at")
        batch.drop_column("intervals")
    with op.batch_alter_table("view_heartbeat") as batch:
        batch.drop_index("ix_view_heartbeat_session_at")
        batch.drop_column("outside_territory")
        batch.drop_column("covered_to_ms")
        batch.drop_column("covered_from_ms")
