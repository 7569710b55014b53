"""playback grants: the first key delivery no longer marks the view start

Revision ID: 0010
Revises: 0014
Create Date: 2026-12-02 13:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # "View started" is recorded at the session's first heartbeat (box office's own table);
    # the key route writes nothing, so the session no longer stamps its first key.
    with op.batch_alter_table("playback_session") as batch:
        batch.drop_column("first_key_at")


def downgrade() -> None:
    with op.batch_alter_table("playback_session") as batch:
        batch.add_column(
            sa.Column("first_key_at", core.db.UTCDateTime(timezone=True), nullable=True)
        )
