"""payment review queue, staff payment actions (audit trail), ledger note

Revision ID: 0014
Revises: 0009
Create Date: 2026-12-02 13:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payment_review",
        sa.Column("ticket_id", sa.String(length=32), nullable=False),
        sa.Column("title_id", sa.String(length=32), nullable=False),
        sa.Column("territory", sa.String(length=2), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("payment_intent_id", sa.String(length=255), nullable=False),
        sa.Column("expected_minor", sa.BigInteger(), nullable=False),
        sa.Column("expected_currency", sa.String(length=3), nullable=False),
        sa.Column("received_minor", sa.BigInteger(), nullable=False),
        sa.Column("received_currency", sa.String(length=3), nullable=False),
        sa.Column("provider_fee_minor", sa.BigInteger(), nullable=True),
        sa.Column("provider_fee_currency", sa.String(length=3), nullable=True),
        sa.Column("paid_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "open",
                "accepted",
                "refunding",
                "refunded",
                name="reviewstatus",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("held", sa.JSON(), nullable=False),
        sa.Column("decided_by", sa.String(length=32), nullable=True),
        sa.Column("decided_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("updated_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["decided_by"],
            ["user_account.id"],
            name=op.f("fk_payment_review_decided_by_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["ticket.id"], name=op.f("fk_payment_review_ticket_id_ticket")
        ),
        sa.ForeignKeyConstraint(
            ["title_id"], ["title.id"], name=op.f("fk_payment_review_title_id_title")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_review")),
        sa.UniqueConstraint(
            "provider",
            "payment_intent_id",
            name=op.f("uq_payment_review_provider_payment_intent_id"),
        ),
        sa.UniqueConstraint("ticket_id", name=op.f("uq_payment_review_ticket_id")),
    )
    with op.batch_alter_table("payment_review", schema=None) as batch_op:
        batch_op.create_index("ix_payment_review_status", ["status", "created_at"], unique=False)

    op.create_table(
        "payment_action",
        sa.Column("ticket_id", sa.String(length=32), nullable=False),
        sa.Column("review_id", sa.String(length=32), nullable=True),
        sa.Column(
            "kind",
            sa.Enum(
                "refund",
                "dispute_evidence",
                "review_accept",
                "review_refund",
                name="actionkind",
                native_enum=False,
                length=30,
            ),
            nullable=False,
        ),
        sa.Column("actor_id", sa.String(length=32), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("request_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "requested",
                "succeeded",
                "failed",
                name="actionstatus",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("provider_idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("provider_reference", sa.String(length=255), nullable=True),
        sa.Column("error_code", sa.String(length=100), nullable=True),
        sa.Column("error_detail", sa.String(length=500), nullable=True),
        sa.Column("completed_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["user_account.id"], name=op.f("fk_payment_action_actor_id_user_account")
        ),
        sa.ForeignKeyConstraint(
            ["review_id"],
            ["payment_review.id"],
            name=op.f("fk_payment_action_review_id_payment_review"),
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["ticket.id"], name=op.f("fk_payment_action_ticket_id_ticket")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_action")),
        sa.UniqueConstraint(
            "actor_id", "idempotency_key", name=op.f("uq_payment_action_actor_id_idempotency_key")
        ),
    )
    with op.batch_alter_table("payment_action", schema=None) as batch_op:
        batch_op.create_index("ix_payment_action_ticket", ["ticket_id", "created_at"], unique=False)

    # A plain ADD COLUMN, not batch mode: on SQLite batch mode copies the table and would
    # drop the append-only trigger of migration 0003.
    op.add_column("ledger_entry", sa.Column("note", sa.String(length=500), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE ledger_entry DROP COLUMN note")  # keeps the trigger (see above)

    with op.batch_alter_table("payment_action", schema=None) as batch_op:
        batch_op.drop_index("ix_payment_action_ticket")

    op.drop_table("payment_action")
    with op.batch_alter_table("payment_review", schema=None) as batch_op:
        batch_op.drop_index("ix_payment_review_status")

    op.drop_table("payment_review")
