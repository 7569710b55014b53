"""box office roll-up in wide rows per (day, title, territory, provider, currency), with
converted money in its own table, and their sums per ISO week; the ECB fetch state

Revision ID: 0019
Revises: 0011
Create Date: 2026-12-02 16:00:00

The roll-up is derived data: the old rows (one per measure) are dropped and every day that
had them is rolled up again by the next periodic run (the watermark is reset, so it finds
the days of every fact).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "0019"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TOTALS = (
    "tickets_sold",
    "gross_minor",
    "refunds_minor",
    "chargebacks_minor",
    "chargeback_reversals_minor",
    "fees_minor",
    "views_started",
    "unique_viewers",
    "qualified_views",
)
_CONVERTED = (
    "gross_minor",
    "refunds_minor",
    "chargebacks_minor",
    "fees_minor",
    "net_minor",
    "studio_payable_minor",
)


def _key_columns(period: str) -> list[sa.Column[object]]:
    return [
        sa.Column(period, sa.Date(), nullable=False),
        sa.Column("title_id", sa.String(length=32), nullable=False),
        sa.Column("territory", sa.String(length=2), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
    ]


def _create_totals(name: str, period: str) -> None:
    op.create_table(
        name,
        *_key_columns(period),
        sa.Column("currency", sa.String(length=3), nullable=False),
        *(_amount(c) for c in _TOTALS),
        sa.PrimaryKeyConstraint(
            period, "title_id", "territory", "provider", "currency", name=op.f(f"pk_{name}")
        ),
    )


def _create_converted(name: str, period: str) -> None:
    op.create_table(
        name,
        *_key_columns(period),
        sa.Column("reporting_currency", sa.String(length=3), nullable=False),
        *(_amount(c) for c in _CONVERTED),
        sa.Column("unconverted", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            period,
            "title_id",
            "territory",
            "provider",
            "reporting_currency",
            name=op.f(f"pk_{name}"),
        ),
    )


def _amount(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.BigInteger(), nullable=False)


def upgrade() -> None:
    with op.batch_alter_table("boxoffice_daily", schema=None) as batch_op:
        batch_op.drop_index("ix_boxoffice_daily_title_day")
    op.drop_table("boxoffice_daily")
    _create_totals("boxoffice_day", "day")
    op.create_index("ix_boxoffice_day_title_day", "boxoffice_day", ["title_id", "day"])
    _create_converted("boxoffice_day_converted", "day")
    op.create_index(
        "ix_boxoffice_day_converted_title_day", "boxoffice_day_converted", ["title_id", "day"]
    )
    _create_totals("boxoffice_week", "week")
    _create_converted("boxoffice_week_converted", "week")
    op.create_table(
        "boxoffice_rolled_week",
        sa.Column("week", sa.Date(), nullable=False),
        sa.Column("computed_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("week", name=op.f("pk_boxoffice_rolled_week")),
    )
    op.create_table(
        "fx_fetch",
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("last_success_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_failure_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("latest_rate_day", sa.Date(), nullable=True),
        sa.Column("backfilled_for", sa.Date(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_fx_fetch")),
    )
    # Every day is rolled up again into the new tables by the next periodic run.
    op.execute("DELETE FROM boxoffice_watermark")
    op.execute("DELETE FROM boxoffice_rolled_day")


def downgrade() -> None:
    op.drop_table("fx_fetch")
    op.drop_table("boxoffice_rolled_week")
    op.drop_table("boxoffice_week_converted")
    op.drop_table("boxoffice_week")
    op.drop_index("ix_boxoffice_day_converted_title_day", table_name="boxoffice_day_converted")
    op.drop_table("boxoffice_day_converted")
    op.drop_index("ix_boxoffice_day_title_day", table_name="boxoffice_day")
    op.drop_table("boxoffice_day")
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
    op.create_index("ix_boxoffice_daily_title_day", "boxoffice_daily", ["title_id", "day"])
    op.execute("DELETE FROM boxoffice_watermark")
    op.execute("DELETE FROM boxoffice_rolled_day")
