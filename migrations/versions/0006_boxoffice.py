"""box office: views, roll-ups, fx, revenue share

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 11:26:39.069014
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "boxoffice_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("title_id", sa.String(length=32), nullable=False),
        sa.Column("territory", sa.String(length=2), nullable=False),
        sa.Column("measure", sa.String(length=30), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "day", "title_id", "territory", "measure", "currency", name=op.f("pk_boxoffice_daily")
        ),
    )
    with op.batch_alter_table("boxoffice_daily", schema=None) as batch_op:
        batch_op.create_index("ix_boxoffice_daily_title_day", ["title_id", "day"], unique=False)

    op.create_table(
        "boxoffice_rolled_day",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("computed_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_boxoffice_rolled_day")),
    )
    op.create_table(
        "boxoffice_watermark",
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("value", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_boxoffice_watermark")),
    )
    op.create_table(
        "fx_rate",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("per_eur", sa.String(length=40), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("loaded_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("day", "currency", name=op.f("pk_fx_rate")),
    )
    op.create_table(
        "ticket_watch",
        sa.Column("ticket_id", sa.String(length=32), nullable=False),
        sa.Column("title_id", sa.String(length=32), nullable=False),
        sa.Column("territory", sa.String(length=2), nullable=False),
        sa.Column("watched_seconds", sa.Float(), nullable=False),
        sa.Column("updated_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("ticket_id", name=op.f("pk_ticket_watch")),
    )
    op.create_table(
        "view_heartbeat",
        sa.Column("playback_session_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("ticket_id", sa.String(length=32), nullable=False),
        sa.Column("reported_seconds", sa.Float(), nullable=False),
        sa.Column("credited_seconds", sa.Float(), nullable=False),
        sa.Column("position_seconds", sa.Float(), nullable=False),
        sa.Column("at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_view_heartbeat")),
        sa.UniqueConstraint(
            "playback_session_id", "seq", name=op.f("uq_view_heartbeat_playback_session_id_seq")
        ),
    )
    with op.batch_alter_table("view_heartbeat", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_view_heartbeat_ticket_id"), ["ticket_id"], unique=False
        )

    op.create_table(
        "revenue_share",
        sa.Column("title_id", sa.String(length=32), nullable=False),
        sa.Column("territory", sa.String(length=2), nullable=False),
        sa.Column("studio_share_bps", sa.Integer(), nullable=False),
        sa.Column("updated_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["title_id"], ["title.id"], name=op.f("fk_revenue_share_title_id_title")
        ),
        sa.PrimaryKeyConstraint("title_id", "territory", name=op.f("pk_revenue_share")),
    )
    op.create_table(
        "qualified_view",
        sa.Column("ticket_id", sa.String(length=32), nullable=False),
        sa.Column("viewer_id", sa.String(length=32), nullable=False),
        sa.Column("title_id", sa.String(length=32), nullable=False),
        sa.Column("territory", sa.String(length=2), nullable=False),
        sa.Column("playback_session_id", sa.String(length=64), nullable=False),
        sa.Column("qualified_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("watched_seconds", sa.Float(), nullable=False),
        sa.Column("threshold_seconds", sa.Float(), nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["ticket.id"], name=op.f("fk_qualified_view_ticket_id_ticket")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qualified_view")),
        sa.UniqueConstraint("ticket_id", name=op.f("uq_qualified_view_ticket_id")),
    )
    with op.batch_alter_table("qualified_view", schema=None) as batch_op:
        batch_op.create_index("ix_qualified_view_created_at", ["created_at"], unique=False)
        batch_op.create_index("ix_qualified_view_qualified_at", ["qualified_at"], unique=False)

    op.create_table(
        "view_start",
        sa.Column("playback_session_id", sa.String(length=64), nullable=False),
        sa.Column("ticket_id", sa.String(length=32), nullable=False),
        sa.Column("viewer_id", sa.String(length=32), nullable=False),
        sa.Column("title_id", sa.String(length=32), nullable=False),
        sa.Column("territory", sa.String(length=2), nullable=False),
        sa.Column("started_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["ticket.id"], name=op.f("fk_view_start_ticket_id_ticket")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_view_start")),
        sa.UniqueConstraint("playback_session_id", name=op.f("uq_view_start_playback_session_id")),
    )
    with op.batch_alter_table("view_start", schema=None) as batch_op:
        batch_op.create_index("ix_view_start_created_at", ["created_at"], unique=False)
        batch_op.create_index("ix_view_start_started_at", ["started_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_view_start_ticket_id"), ["ticket_id"], unique=False)

    # A plain CREATE INDEX: a batch (table rebuild) on SQLite would drop the ledger's
    # append-only triggers from migration 0003.
    op.create_index("ix_ledger_entry_created_at", "ledger_entry", ["created_at"], unique=False)


def downgrade() -> None:

    op.drop_index("ix_ledger_entry_created_at", table_name="ledger_entry")

    with op.batch_alter_table("view_start", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_view_start_ticket_id"))
        batch_op.drop_index("ix_view_start_started_at")
        batch_op.drop_index("ix_view_start_created_at")

    op.drop_table("view_start")
    with op.batch_alter_table("qualified_view", schema=None) as batch_op:
        batch_op.drop_index("ix_qualified_view_qualified_at")
        batch_op.drop_index("ix_qualified_view_created_at")

    op.drop_table("qualified_view")
    op.drop_table("revenue_share")
    with op.batch_alter_table("view_heartbeat", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_view_heartbeat_ticket_id"))

    op.drop_table("view_heartbeat")
    op.drop_table("ticket_watch")
    op.drop_table("fx_rate")
    op.drop_table("boxoffice_watermark")
    op.drop_table("boxoffice_rolled_day")
    with op.batch_alter_table("boxoffice_daily", schema=None) as batch_op:
        batch_op.drop_index("ix_boxoffice_daily_title_day")

    op.drop_table("boxoffice_daily")
