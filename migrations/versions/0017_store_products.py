"""store products: App Store and Google Play product ids and price points per title and territory

Revision ID: 0017
Revises: 0011
Create Date: 2026-12-02 16:00:00

Store purchases need no other schema change: a ticket bought in a store keeps the store as
its ``provider`` and the store's transaction (Apple's transactionId, Google's orderId) as its
``payment_intent_id``, under the existing UNIQUE(provider, payment_intent_id).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "store_product",
        sa.Column("title_id", sa.String(length=32), nullable=False),
        sa.Column("store", sa.String(length=20), nullable=False),
        sa.Column("territory", sa.String(length=2), nullable=False),
        sa.Column("product_id", sa.String(length=150), nullable=False),
        sa.Column("price_minor", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("updated_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("price_minor > 0", name=op.f("ck_store_product_store_price_positive")),
        sa.ForeignKeyConstraint(
            ["title_id"],
            ["title.id"],
            name=op.f("fk_store_product_title_id_title"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_store_product")),
        sa.UniqueConstraint(
            "store",
            "product_id",
            "territory",
            name=op.f("uq_store_product_store_product_id_territory"),
        ),
        sa.UniqueConstraint(
            "title_id", "store", "territory", name=op.f("uq_store_product_title_id_store_territory")
        ),
    )
    with op.batch_alter_table("store_product") as batch:
        batch.create_index(batch.f("ix_store_product_title_id"), ["title_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("store_product") as batch:
        batch.drop_index(batch.f("ix_store_product_title_id"))
    op.drop_table("store_product")
