"""Who may do what: studios, and users with one role each."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Enum, ForeignKey, String
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
