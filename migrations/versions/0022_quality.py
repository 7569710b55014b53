"""per-rendition quality scores on a release (XPSNR and SSIM against the master)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03 08:05:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | Sequence[str] | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("release") as batch_op:
        batch_op.add_column(sa.Column("quality", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("release") as batch_op:
        batch_op.drop_column("quality")
