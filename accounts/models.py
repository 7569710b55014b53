"""Who may do what: studios, and users with one role each."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Enum, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, IdMixin, TimestampMixin


class Role(StrEnum):
    viewer = "viewer"
    studio = "studio"
    finance = "finance"
    admin = "admin"


class Studio(IdMixin, TimestampMixin, Base):
    __tablename__ = "studio"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    # Where ready/failed notifications for this studio's releases are POSTed (HMAC-signed).
    webhook_url: Mapped[str | None] = mapped_column(String(2000))


class User(IdMixin, TimestampMixin, Base):
    __tablename__ = "user_account"

    email: Mapped[str] = mapped_column(String(320), unique=True)
    # None for accounts that only ever sign in with Apple or Google.
    password_hash: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(
        Enum(Role, native_enum=False, length=20), default=Role.viewer
    )
    studio_id: Mapped[str | None] = mapped_column(ForeignKey("studio.id"), index=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    disabled_at: Mapped[datetime | None]
    # When the owner proved the address is theirs (a mailed code, a provider that vouches
    # for it, or an admin who made the account). Until then the account cannot sign in and
    # Apple/Google sign-in never attach to it.
    email_verified_at: Mapped[datetime | None]
    # BCP 47 tag the account's mails are written in (chosen at sign-up from the app's
    # languages, with the catalog's CLDR fallback).
    locale: Mapped[str | None] = mapped_column(String(35))
    # Deleted by its owner: the row stays so tickets and ledger rows keep their numbers,
    # but it holds nothing personal any more (accounts.lifecycle.delete_account).
    deleted_at: Mapped[datetime | None]


class RefreshToken(IdMixin, TimestampMixin, Base):
    """One refresh token of a sign-in session. Only a SHA-256 of the token is stored (the
    token itself is 256 random bits, so a fast hash is enough and lookups stay indexed).

    Every refresh spends the presented token and issues a new one in the same *family*
    (one family per sign-in on a device). Presenting a spent token again means it was copied:
    the whole family is revoked, the thief's copy and the owner's alike.
    """

    __tablename__ = "refresh_token"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    family_id: Mapped[str] = mapped_column(String(32), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    device_id: Mapped[str | None] = mapped_column(String(128))
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class LoginAttempt(IdMixin, Base):
    """A failed password login, counted per (email, IP) to slow down guessing."""

    __tablename__ = "login_attempt"
    __table_args__ = (Index("ix_login_attempt_key_at", "email", "ip", "at"),)

    email: Mapped[str] = mapped_column(String(320))
    ip: Mapped[str] = mapped_column(String(45))
    at: Mapped[datetime]


class ExternalIdentity(IdMixin, TimestampMixin, Base):
    """A Sign in with Apple / Google account linked to one of our users."""

    __tablename__ = "external_identity"
    __table_args__ = (UniqueConstraint("provider", "subject"),)

    provider: Mapped[str] = mapped_column(String(20))  # "apple" | "google"
    subject: Mapped[str] = mapped_column(String(255))  # the provider's stable "sub"
    user_id: Mapped[str] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str | None] = mapped_column(String(320))


class CodePurpose(StrEnum):
    verify_email = "verify_email"
    reset_password = "reset_password"  # noqa: S105 - a purpose, not a password
    change_email = "change_email"


class AccountCode(IdMixin, Base):
    """A one-time code mailed to the owner of an address (accounts/codes.py).

    Only a keyed hash of the code is stored. A sign-up's code carries the password hash that
    sign-up chose (``password_hash``): verifying that code sets that password, so whoever
    signed up with someone else's address first never keeps a way in. An e-mail change's
    code carries the new address."""

    __tablename__ = "account_code"
    __table_args__ = (Index("ix_account_code_user_purpose", "user_id", "purpose"),)

    user_id: Mapped[str] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    purpose: Mapped[CodePurpose] = mapped_column(Enum(CodePurpose, native_enum=False, length=20))
    code_hash: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    new_email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)


class MailKind(StrEnum):
    verify_email = "verify_email"  # the sign-up code
    sign_up_attempt = "sign_up_attempt"  # "someone tried to sign up with your address"
    reset_password = "reset_password"  # noqa: S105 - the reset code
    change_email = "change_email"  # the code, to the new address
    address_in_use = "address_in_use"  # someone tried to move another account to this address
    email_changed = "email_changed"  # notice to the old address
    account_deleted = "account_deleted"  # farewell, to the address the account had


class AccountMail(IdMixin, Base):
    """A mail to send, written in the transaction that decided it and sent by a job after
    commit (the outbox). The code, if any, is derived again when sending, never stored; the
    address is cleared once the relay accepted the mail."""

    __tablename__ = "account_mail"

    user_id: Mapped[str | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), index=True
    )
    kind: Mapped[MailKind] = mapped_column(Enum(MailKind, native_enum=False, length=30))
    to_address: Mapped[str] = mapped_column(String(320))
    locale: Mapped[str] = mapped_column(String(35))
    code_id: Mapped[str | None] = mapped_column(ForeignKey("account_code.id", ondelete="SET NULL"))
    note: Mapped[str | None] = mapped_column(String(320))  # e.g. the new address, masked
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class AccountActionKind(StrEnum):
    disable = "disable"
    enable = "enable"


class AccountAction(IdMixin, Base):
    """An admin's decision about an account (disable, enable again), kept as an audit trail:
    who decided, when and why. Rows are only ever added."""

    __tablename__ = "account_action"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    actor_id: Mapped[str] = mapped_column(String(32))
    kind: Mapped[AccountActionKind] = mapped_column(
        Enum(AccountActionKind, native_enum=False, length=20)
    )
    reason: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime]
