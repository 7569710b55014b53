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
