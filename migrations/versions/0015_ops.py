"""partial indexes behind the operators' metrics: declined and refunded tickets, live sessions

Revision ID: 0015
Revises: 0010
Create Date: 2026-12-02 14:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_ticket_failed_refunded",
        "ticket",
        ["state", "currency"],
        postgresql_where=sa.text("state IN ('failed', 'refunded')"),
        sqlite_where=sa.text("state IN ('failed', 'refunded')"),
    )
    op.create_index(
        "ix_playback_session_not_ended",
        "playback_session",
        ["last_heartbeat_at"],
        postgresql_where=sa.text("ended_at IS NULL"),
        sqlite_where=sa.text("ended_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_playback_session_not_ended", table_name="playback_session")
    op.drop_index("ix_ticket_failed_refunded", table_name="ticket")
