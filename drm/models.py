"""Content keys, stored only envelope-encrypted."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, IdMixin, TimestampMixin


class ContentKey(IdMixin, TimestampMixin, Base):
    """One AES-128 key of a release (one per key period). ``wrapped_key`` is the key
    encrypted under the key-encryption key named by ``kek_ref``; the plaintext never touches
    the database."""

    __tablename__ = "content_key"

    release_id: Mapped[str] = mapped_column(String(32), index=True)
    key_id: Mapped[str] = mapped_column(String(32), unique=True)  # hex, also the CENC KID
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    kek_ref: Mapped[str] = mapped_column(String(300))  # "local:v2" or "kms:<key id or arn>"
    rewrapped_at: Mapped[datetime | None]
