"""The catalog: titles a studio offers. Localized metadata, releases, tracks, licence
windows and prices hang off :class:`Title`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, IdMixin, TimestampMixin


class Title(IdMixin, TimestampMixin, Base):
    __tablename__ = "title"

    studio_id: Mapped[str] = mapped_column(ForeignKey("studio.id"), index=True)
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    original_title: Mapped[str] = mapped_column(String(300))
    original_language: Mapped[str] = mapped_column(String(35))  # BCP 47
    runtime_seconds: Mapped[int | None]
    # Lower-cased, accent-folded text of every localized name and synopsis, kept by the
    # catalog.title.index job so that search is one indexed LIKE on every database.
    search_text: Mapped[str] = mapped_column(Text, default="")
    indexed_at: Mapped[datetime | None]
