"""account_action: the audit trail of admins disabling and enabling accounts

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-03 07:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "0023"
down_revision: str | Sequence[str] | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "account_action",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("actor_id", sa.String(length=32), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("disable", "enable", name="accountactionkind", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_account_action_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_action")),
    )
    with op.batch_alter_table("account_action", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_account_action_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("account_action", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_action_user_id"))
    op.drop_table("account_action")
