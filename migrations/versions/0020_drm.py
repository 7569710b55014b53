"""drm: a release's protection profile (aes128 fallback or cbcs CMAF)

Revision ID: 0020
Revises: 0011
Create Date: 2026-12-02 16:00:00

Existing releases keep what they were packaged with (NULL: the settings' default at their
next transcode; their outputs say how the current package is protected).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | Sequence[str] | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("release") as batch:
        batch.add_column(sa.Column("protection_profile", sa.String(length=10), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("release") as batch:
        batch.drop_column("protection_profile")
