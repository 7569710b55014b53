"""The catalog: titles a studio offers. Localized metadata, tracks, collections, licence
windows and prices hang off :class:`Title`.

Licensing is data: a :class:`LicenceWindow` is a set of territories and a half-open time
interval ``[starts_at, ends_at)``; a :class:`TerritoryPrice` says what a ticket costs in one
country during one window. docs/catalog.md defines availability in full.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base, IdMixin, TimestampMixin, utcnow


class TerritoryMode(StrEnum):
    """How a territory list is read."""

    listed = "listed"  # exactly the listed countries
    worldwide_except = "worldwide_except"  # every country but the listed ones


class TrackKind(StrEnum):
    audio = "audio"
    subtitle = "subtitle"


_MODE = Enum(TerritoryMode, native_enum=False, length=20)


class Title(IdMixin, TimestampMixin, Base):
    __tablename__ = "title"

    studio_id: Mapped[str] = mapped_column(ForeignKey("studio.id"), index=True)
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    original_title: Mapped[str] = mapped_column(String(300))
    original_language: Mapped[str] = mapped_column(String(35))  # BCP 47
    runtime_seconds: Mapped[int | None]
    # The free trailer: a public URL, or a key in our object storage (one of them or none).
    trailer_url: Mapped[str | None] = mapped_column(String(2000))
    trailer_key: Mapped[str | None] = mapped_column(String(500))
    # Lower-cased, accent-folded text of every localized name and synopsis, kept by the
    # catalog.title.index job so that search is one indexed LIKE on every database.
    search_text: Mapped[str] = mapped_column(Text, default="")
    indexed_at: Mapped[datetime | None]

    localizations: Mapped[list[TitleLocalization]] = relationship(
        back_populates="title", cascade="all, delete-orphan", order_by="TitleLocalization.locale"
    )
    genres: Mapped[list[TitleGenre]] = relationship(
        cascade="all, delete-orphan", order_by="TitleGenre.genre"
    )
    tracks: Mapped[list[TitleTrackLanguage]] = relationship(
        cascade="all, delete-orphan",
        order_by="(TitleTrackLanguage.kind, TitleTrackLanguage.language)",
    )
    windows: Mapped[list[LicenceWindow]] = relationship(
        back_populates="title", cascade="all, delete-orphan", order_by="LicenceWindow.starts_at"
    )


class TitleLocalization(IdMixin, Base):
    """Metadata of a title in one locale (BCP 47, stored in canonical case: zh-Hant-TW)."""

    __tablename__ = "title_localization"
    __table_args__ = (UniqueConstraint("title_id", "locale"),)

    title_id: Mapped[str] = mapped_column(ForeignKey("title.id", ondelete="CASCADE"))
    locale: Mapped[str] = mapped_column(String(35))
    name: Mapped[str] = mapped_column(String(300))
    synopsis: Mapped[str | None] = mapped_column(Text)
    tagline: Mapped[str | None] = mapped_column(String(500))
    artwork_url: Mapped[str | None] = mapped_column(String(2000))
    artwork_key: Mapped[str | None] = mapped_column(String(500))

    title: Mapped[Title] = relationship(back_populates="localizations")


class TitleGenre(Base):
    __tablename__ = "title_genre"

    title_id: Mapped[str] = mapped_column(
        ForeignKey("title.id", ondelete="CASCADE"), primary_key=True
    )
    genre: Mapped[str] = mapped_column(String(40), primary_key=True, index=True)


class TitleTrackLanguage(Base):
    """A language a title can be heard or read in. Filled by transcoding once a release's
    tracks are packaged (``catalog.service.set_track_languages``)."""

    __tablename__ = "title_track_language"

    title_id: Mapped[str] = mapped_column(
        ForeignKey("title.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[TrackKind] = mapped_column(
        Enum(TrackKind, native_enum=False, length=10), primary_key=True
    )
    language: Mapped[str] = mapped_column(String(35), primary_key=True)


class LicenceWindow(IdMixin, TimestampMixin, Base):
    """Where and when a title may be sold and played: ``[starts_at, ends_at)`` in UTC over a
    territory set. Windows of one title never overlap in both time and territory (the
    service refuses it), so at most one window answers for a country at an instant."""

    __tablename__ = "licence_window"
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        Index("ix_licence_window_title_time", "title_id", "starts_at", "ends_at"),
    )

    title_id: Mapped[str] = mapped_column(ForeignKey("title.id", ondelete="CASCADE"))
    territory_mode: Mapped[TerritoryMode] = mapped_column(_MODE)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]

    title: Mapped[Title] = relationship(back_populates="windows")
    territories: Mapped[list[LicenceTerritory]] = relationship(
        cascade="all, delete-orphan", order_by="LicenceTerritory.country"
    )
    prices: Mapped[list[TerritoryPrice]] = relationship(
        cascade="all, delete-orphan", order_by="TerritoryPrice.country"
    )

    @property
    def countries(self) -> frozenset[str]:
        return frozenset(t.country for t in self.territories)


class LicenceTerritory(Base):
    """One country of a window's list (included or excluded, per the window's mode)."""

    __tablename__ = "licence_territory"

    window_id: Mapped[str] = mapped_column(
        ForeignKey("licence_window.id", ondelete="CASCADE"), primary_key=True
    )
    country: Mapped[str] = mapped_column(String(2), primary_key=True)


class TerritoryPrice(IdMixin, Base):
    """The price of a ticket in one country during one window, in minor units of a currency."""

    __tablename__ = "territory_price"
    __table_args__ = (
        UniqueConstraint("window_id", "country"),
        CheckConstraint("price_minor > 0", name="price_positive"),
    )

    window_id: Mapped[str] = mapped_column(ForeignKey("licence_window.id", ondelete="CASCADE"))
    country: Mapped[str] = mapped_column(String(2))
    price_minor: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))


class StoreProduct(IdMixin, TimestampMixin, Base):
    """What a title costs in one country's storefront of an app store: the store's product
    id and the price point the studio set up for it there (docs/stores.md).

    A purchase reported by a store names a product id and a storefront; this row says which
    title and territory that is, and which price the store must have charged.
    """

    __tablename__ = "store_product"
    __table_args__ = (
        # A product id in one storefront sells exactly one title...
        UniqueConstraint("store", "product_id", "territory"),
        # ... and a title has one product per store and territory.
        UniqueConstraint("title_id", "store", "territory"),
        CheckConstraint("price_minor > 0", name="store_price_positive"),
    )

    title_id: Mapped[str] = mapped_column(ForeignKey("title.id", ondelete="CASCADE"), index=True)
    store: Mapped[str] = mapped_column(String(20))  # core.settings.Store
    territory: Mapped[str] = mapped_column(String(2))  # ISO 3166-1 alpha-2
    product_id: Mapped[str] = mapped_column(String(150))
    price_minor: Mapped[int] = mapped_column(Integer)  # the consumer price, tax included
    currency: Mapped[str] = mapped_column(String(3))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Collection(IdMixin, TimestampMixin, Base):
    """A festival section or shelf. A collection *restricts* when it has a time window or a
    territory set; then its titles are on sale only inside it (see docs/catalog.md)."""

    __tablename__ = "collection"
    __table_args__ = (
        CheckConstraint(
            "starts_at IS NULL OR ends_at IS NULL OR ends_at > starts_at",
            name="ends_after_start",
        ),
    )

    studio_id: Mapped[str] = mapped_column(ForeignKey("studio.id"), index=True)
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text)
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    territory_mode: Mapped[TerritoryMode | None] = mapped_column(_MODE)  # None: everywhere

    territories: Mapped[list[CollectionTerritory]] = relationship(
        cascade="all, delete-orphan", order_by="CollectionTerritory.country"
    )
    members: Mapped[list[CollectionTitle]] = relationship(
        cascade="all, delete-orphan", order_by="CollectionTitle.position"
    )

    @property
    def restricts(self) -> bool:
        return (
            self.starts_at is not None
            or self.ends_at is not None
            or self.territory_mode is not None
        )

    @property
    def countries(self) -> frozenset[str]:
        return frozenset(t.country for t in self.territories)


class CollectionTerritory(Base):
    __tablename__ = "collection_territory"

    collection_id: Mapped[str] = mapped_column(
        ForeignKey("collection.id", ondelete="CASCADE"), primary_key=True
    )
    country: Mapped[str] = mapped_column(String(2), primary_key=True)


class CollectionTitle(Base):
    __tablename__ = "collection_title"

    collection_id: Mapped[str] = mapped_column(
        ForeignKey("collection.id", ondelete="CASCADE"), primary_key=True
    )
    title_id: Mapped[str] = mapped_column(
        ForeignKey("title.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    position: Mapped[int] = mapped_column(Integer, default=0)


# --- releases -------------------------------------------------------------------------------
# Releases: the playable versions of a title, their uploaded assets and their HLS output.
#
# A release belongs to one title (and so one studio). Its master, dubs, commentary and
# subtitle files are :class:`ReleaseAsset` rows; the transcoding pipeline moves the release
# through :class:`ReleaseStatus` and records what it produced, which is all playback needs to
# know (playlist location, content key id, tracks). The catalog owns this record so that
# playback (``tickets``/``drm``) can read it without depending on ``transcoding``.


class ReleaseStatus(StrEnum):
    awaiting_upload = "awaiting_upload"
    queued = "queued"
    probing = "probing"
    encoding = "encoding"
    packaging = "packaging"
    ready = "ready"
    failed = "failed"


class AssetKind(StrEnum):
    master = "master"
    audio = "audio"  # a dub
    commentary = "commentary"  # audio that explains cultural background
    subtitle = "subtitle"


class AssetStatus(StrEnum):
    uploading = "uploading"
    uploaded = "uploaded"
    rejected = "rejected"


def _enum(kind: type[StrEnum]) -> Enum:
    return Enum(kind, native_enum=False, length=30)


class Release(IdMixin, TimestampMixin, Base):
    __tablename__ = "release"

    title_id: Mapped[str] = mapped_column(ForeignKey("title.id"), index=True)
    studio_id: Mapped[str] = mapped_column(ForeignKey("studio.id"), index=True)
    label: Mapped[str] = mapped_column(String(200), default="Main feature")
    status: Mapped[ReleaseStatus] = mapped_column(
        _enum(ReleaseStatus), default=ReleaseStatus.awaiting_upload
    )
    attempt: Mapped[int] = mapped_column(default=0)  # one per transcode run
    progress: Mapped[float] = mapped_column(Float, default=0.0)  # 0..1 of the current phase
    eta_seconds: Mapped[int | None]
    failure_code: Mapped[str | None] = mapped_column(String(80))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    hls_prefix: Mapped[str | None] = mapped_column(String(500))
    master_playlist_key: Mapped[str | None] = mapped_column(String(500))
    content_key_id: Mapped[str | None] = mapped_column(String(32))
    # "aes128" or "cbcs" (core.settings.ProtectionProfile); None: the setting's default.
    protection_profile: Mapped[str | None] = mapped_column(String(10))
    poster_key: Mapped[str | None] = mapped_column(String(500))
    sprite_key: Mapped[str | None] = mapped_column(String(500))
    sprite_vtt_key: Mapped[str | None] = mapped_column(String(500))
    # What the packager produced: variants, audio and subtitle renditions (for apps and QA).
    outputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Per-rendition scores against the master (transcoding.quality): a list of
    # {"rendition", "codec", "width", "height", "bitrate", "xpsnr_y", "ssim_y", "frames"};
    # None: not scored (quality step off or failed, or a release from before scoring).
    quality: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    # What the studio should know but that did not stop the release: an optional artifact
    # that failed, an untagged audio track, a bitmap subtitle that needs OCR. A list of
    # {"code", "detail", "step"} dicts, cleared at the start of each transcode run.
    warnings: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    # How the master's mono audio streams are grouped into tracks, set by the studio:
    # [[1, 2], [3, 4]] (audio streams numbered from 1 in file order); None means the
    # default map (transcoding/tracks.py).
    channel_map: Mapped[list[list[int]] | None] = mapped_column(JSON)
    status_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The pipeline's last sign of life for this release (a status change, a progress
    # report). A busy release whose last sign is too old is failed as ``stalled``.
    progress_at: Mapped[datetime | None]
    ready_at: Mapped[datetime | None]


class ReleaseAsset(IdMixin, TimestampMixin, Base):
    __tablename__ = "release_asset"

    release_id: Mapped[str] = mapped_column(ForeignKey("release.id"), index=True)
    kind: Mapped[AssetKind] = mapped_column(_enum(AssetKind))
    language: Mapped[str | None] = mapped_column(String(35))  # BCP 47
    name: Mapped[str | None] = mapped_column(String(100))  # label shown in the player
    filename: Mapped[str] = mapped_column(String(300))
    storage_key: Mapped[str] = mapped_column(String(500))
    size_bytes: Mapped[int]
    status: Mapped[AssetStatus] = mapped_column(_enum(AssetStatus), default=AssetStatus.uploading)
    rejection_code: Mapped[str | None] = mapped_column(String(80))
    rejection_reason: Mapped[str | None] = mapped_column(Text)


class TrackRole(StrEnum):
    """What an audio track is to the viewer (subtitle tracks have no role)."""

    original = "original"
    dub = "dub"
    commentary = "commentary"
    description = "description"  # audio description for blind and partially sighted viewers


class TrackStatus(StrEnum):
    published = "published"  # becomes (or became) an HLS rendition
    unsupported = "unsupported"  # listed for the studio, not published (bitmap subtitles)


class ReleaseTrack(IdMixin, TimestampMixin, Base):
    __tablename__ = "release_track"
    __table_args__ = (UniqueConstraint("release_id", "source"),)

    release_id: Mapped[str] = mapped_column(ForeignKey("release.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[TrackKind] = mapped_column(Enum(TrackKind, native_enum=False, length=10))
    source: Mapped[str] = mapped_column(String(100))
    codec: Mapped[str | None] = mapped_column(String(40))
    channels: Mapped[int | None]
    channel_layout: Mapped[str | None] = mapped_column(String(40))
    language: Mapped[str] = mapped_column(String(35))  # BCP 47
    # What the container said, for the studio to compare with ("chi", "und", None).
    detected_language: Mapped[str | None] = mapped_column(String(35))
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[TrackRole | None] = mapped_column(Enum(TrackRole, native_enum=False, length=20))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    forced: Mapped[bool] = mapped_column(Boolean, default=False)
    sdh: Mapped[bool] = mapped_column(
        Boolean, default=False
    )  # subtitles for deaf / hard of hearing
    status: Mapped[TrackStatus] = mapped_column(
        Enum(TrackStatus, native_enum=False, length=20), default=TrackStatus.published
    )
    # The studio changed a label: a new run of the same uploads keeps the studio's labels.
    edited: Mapped[bool] = mapped_column(Boolean, default=False)
    # The rendition's media playlist, relative to the master playlist, once packaged.
    playlist: Mapped[str | None] = mapped_column(String(200))
