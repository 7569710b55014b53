"""release tracks

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 13:08:25.637613
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "release_track",
        sa.Column("release_id", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("audio", "subtitle", name="trackkind", native_enum=False, length=10),
            nullable=False,
        ),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("codec", sa.String(length=40), nullable=True),
        sa.Column("channels", sa.Integer(), nullable=True),
        sa.Column("channel_layout", sa.String(length=40), nullable=True),
        sa.Column("language", sa.String(length=35), nullable=False),
        sa.Column("detected_language", sa.String(length=35), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "original",
                "dub",
                "commentary",
                "description",
                name="trackrole",
                native_enum=False,
                length=20,
            ),
            nullable=True,
        ),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.Column("sdh", sa.Boolean(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("published", "unsupported", name="trackstatus", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("edited", sa.Boolean(), nullable=False),
        sa.Column("playlist", sa.String(length=200), nullable=True),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["release_id"], ["release.id"], name=op.f("fk_release_track_release_id_release")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_release_track")),
        sa.UniqueConstraint(
            "release_id", "source", name=op.f("uq_release_track_release_id_source")
        ),
    )
    with op.batch_alter_table("release_track", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_release_track_release_id"), ["release_id"], unique=False
        )

    with op.batch_alter_table("release", schema=None) as batch_op:
        batch_op.add_column(sa.Column("channel_map", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("release", schema=None) as batch_op:
        batch_op.drop_column("channel_map")

    with op.batch_alter_table("release_track", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_release_track_release_id"))

    op.drop_table("release_track")
