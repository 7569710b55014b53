"""Request and response bodies of the studio's track routes (api/routes/studio_tracks.py)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from catalog.models import TrackKind, TrackRole, TrackStatus

LANGUAGE = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$"
GROUP_SIZES = (1, 2, 6, 8)  # one stream as it is; mono streams as stereo, 5.1, 7.1


class TrackRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "3f2c9a0d5e7b4c1a9f8e7d6c5b4a3928",
                    "position": 1,
                    "kind": "audio",
                    "source": "stream:2",
                    "codec": "aac",
                    "channels": 2,
                    "channel_layout": "stereo",
                    "language": "en",
                    "detected_language": "eng",
                    "name": "English",
                    "role": "dub",
                    "is_default": False,
                    "forced": False,
                    "sdh": False,
                    "status": "published",
                    "edited": False,
                    "playlist": "audio_1_en.m3u8",
                }
            ]
        },
    )

    id: str
    position: int = Field(description="Order in the player's menu")
    kind: TrackKind
    source: str = Field(
        description="Where it comes from: stream:N (a stream of the master), streams:N+M "
        "(mono streams joined by the channel map) or asset:ID (an uploaded file)"
    )
    codec: str | None
    channels: int | None = Field(description="Channels of the source (renditions are stereo)")
    channel_layout: str | None
    language: str = Field(description="BCP 47, as players will show it")
    detected_language: str | None = Field(description="The tag the file carried, e.g. chi")
    name: str
    role: TrackRole | None = Field(description="Audio only")
    is_default: bool
    forced: bool = Field(description="Subtitles only: shown for foreign dialogue, HLS FORCED=YES")
    sdh: bool = Field(description="Subtitles only: for the deaf and hard of hearing")
    status: TrackStatus = Field(
        description="published, or unsupported (bitmap subtitles: listed, not published)"
    )
    edited: bool = Field(description="The studio corrected it; new runs keep the correction")
    playlist: str | None = Field(description="Its media playlist once packaged")


class TrackUpdate(BaseModel):
    """Only the fields sent change. A ready release's playlists are republished with the new
    labels within seconds, without re-encoding."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"language": "zh-Hans", "name": "普通话", "role": "original"}]
        },
    )

    language: str | None = Field(default=None, pattern=LANGUAGE, max_length=35)
    name: str | None = Field(default=None, min_length=1, max_length=100)
    role: TrackRole | None = None
    is_default: bool | None = None
    forced: bool | None = None
    sdh: bool | None = None

    @field_validator("name")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or any(c in value for c in '"\r\n')):
            raise ValueError("a name needs a visible character and no quotes or line breaks")
        return value


class ChannelMap(BaseModel):
    """How the master's audio streams (numbered from 1 in file order) become tracks."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"groups": [[1, 2, 3, 4, 5, 6], [7, 8]]}]},
    )

    groups: list[list[int]] | None = Field(
        description="Each group is one track: one stream as it is, or 2 / 6 / 8 mono streams "
        "joined as stereo / 5.1 (L R C LFE Ls Rs) / 7.1. Streams in no group are not "
        "published. null: the default map (mono streams in pairs; six or more start with 5.1)",
        max_length=64,
    )

    @field_validator("groups")
    @classmethod
    def _shape(cls, groups: list[list[int]] | None) -> list[list[int]] | None:
        if groups is None:
            return None
        seen: set[int] = set()
        for group in groups:
            if len(group) not in GROUP_SIZES:
                raise ValueError(f"a group has 1, 2, 6 or 8 streams, not {len(group)}")
            for number in group:
                if not 1 <= number <= 64:
                    raise ValueError("audio streams are numbered 1 to 64")
                if number in seen:
                    raise ValueError(f"audio stream {number} is in two groups")
                seen.add(number)
        if not groups:
            raise ValueError("give at least one group, or null for the default map")
        return groups


class ChannelMapRead(ChannelMap):
    applies: str = Field(
        default="from the next transcode run",
        description="Grouping changes what is encoded, so it takes a new run",
    )
