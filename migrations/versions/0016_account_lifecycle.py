"""accounts: e-mail verification, one-time codes, account mail, deletion

Revision ID: 0016
Revises: 0011
Create Date: 2026-12-02 16:00:00

Accounts that existed before verification are kept usable when something already vouches
for them: made by an admin (staff roles), linked to Apple/Google, or signed in at least once
(it had to pass the password check). A password sign-up that never signed in stays
unverified and must verify its address (or reset its password) first.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email_verified_at", core.db.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("locale", sa.String(length=35), nullable=True))
        batch_op.add_column(sa.Column("deleted_at", core.db.UTCDateTime(), nullable=True))
    op.execute(
        "UPDATE user_account SET email_verified_at = created_at "
        "WHERE role <> 'viewer' "
        "OR id IN (SELECT user_id FROM external_identity) "
        "OR id IN (SELECT user_id FROM refresh_token)"
    )

    op.create_table(
        "account_code",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column(
            "purpose",
            sa.Enum(
                "verify_email",
                "reset_password",
                "change_email",
                name="codepurpose",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("new_email", sa.String(length=320), nullable=True),
        sa.Column("created_at", core.db.UTCDateTime(), nullable=False),
        sa.Column("expires_at", core.db.UTCDateTime(), nullable=False),
        sa.Column("used_at", core.db.UTCDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_account_code_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_code")),
    )
    op.create_index(
        "ix_account_code_user_purpose", "account_code", ["user_id", "purpose"], unique=False
    )

    op.create_table(
        "account_mail",
        sa.Column("user_id", sa.String(length=32), nullable=True),
        sa.Column(
            "kind",
            sa.Enum(
                "verify_email",
                "sign_up_attempt",
                "reset_password",
                "change_email",
                "address_in_use",
                "email_changed",
                "account_deleted",
                name="mailkind",
                native_enum=False,
                length=30,
            ),
            nullable=False,
        ),
        sa.Column("to_address", sa.String(length=320), nullable=False),
        sa.Column("locale", sa.String(length=35), nullable=False),
        sa.Column("code_id", sa.String(length=32), nullable=True),
        sa.Column("note", sa.String(length=320), nullable=True),
        sa.Column("created_at", core.db.UTCDateTime(), nullable=False),
        sa.Column("sent_at", core.db.UTCDateTime(), nullable=True),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["code_id"],
            ["account_code.id"],
            name=op.f("fk_account_mail_code_id_account_code"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_account_mail_user_id_user_account"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_mail")),
    )
    op.create_index(op.f("ix_account_mail_user_id"), "account_mail", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_account_mail_user_id"), table_name="account_mail")
    op.drop_table("account_mail")
    op.drop_index("ix_account_code_user_purpose", table_name="account_code")
    op.drop_table("account_code")
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.drop_column("deleted_at")
        batch_op.drop_column("locale")
        batch_op.drop_column("email_verified_at")
