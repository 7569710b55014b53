"""The request and response schemas of `api/routes/playback.py`."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class PlaybackStart(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "ticket_id": "3f2b9c1d6e7a4b8c9d0e1f2a3b4c5d6e",
                    "take_over": False,
                    "position_seconds": 1834.5,
                }
            ]
        },
    )

    ticket_id: str = Field(min_length=1, max_length=64, description="One of my tickets")
    take_over: bool = Field(
        default=False,
        description="At the stream limit, end the other screen's session and play here",
    )
    position_seconds: float = Field(
        default=0.0,
        ge=0,
        le=86_400,
        description="Where playback starts (e.g. the ticket's resume position): the grant "
        "opens the key periods around it",
    )


class AudioTrackRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"language": "de", "name": "Deutsch", "role": "dub"}]}
    )

    language: str
    name: str
    role: str = Field(description="original, dub or commentary")


class SubtitleTrackRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"language": "en", "name": "English"}]}
    )

    language: str
    name: str


class GrantRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "token": "eyJzIjoiYzQxZDdlOWEiLCJ0IjoiM2YyYjljMWQifQ.q1w2e3r4t5y6u7i8o9p0aa",
                    "token_expires_at": "2026-03-01T20:01:00Z",
                    "key_periods": [0, 1],
                }
            ]
        }
    )

    token: str = Field(
        description="The playback grant: send it with every playlist, key and media request"
    )
    token_expires_at: datetime
    key_periods: list[int] = Field(description="First and last key period the grant opens")


class PlaybackStarted(GrantRead):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "token": "eyJzIjoiYzQxZDdlOWEiLCJ0IjoiM2YyYjljMWQifQ.q1w2e3r4t5y6u7i8o9p0aa",
                    "token_expires_at": "2026-03-01T20:01:00Z",
                    "key_periods": [0, 1],
                    "session_id": "c41d7e9a0b2f4c6d8e1a3b5c7d9e0f12",
                    "ticket_id": "3f2b9c1d6e7a4b8c9d0e1f2a3b4c5d6e",
                    "title_id": "7d0c5a4e2b8f4a61b3f09c2d8e1a6b55",
                    "master_playlist_url": "https://api.example.com/v1/playback/sessions/c41d7e9a0b2f4c6d8e1a3b5c7d9e0f12/master.m3u8",
                    "refresh_url": "https://api.example.com/v1/playback/sessions/c41d7e9a0b2f4c6d8e1a3b5c7d9e0f12/token",
                    "heartbeat_url": "https://api.example.com/v1/playback/sessions/c41d7e9a0b2f4c6d8e1a3b5c7d9e0f12/heartbeat",
                    "stop_url": "https://api.example.com/v1/playback/sessions/c41d7e9a0b2f4c6d8e1a3b5c7d9e0f12/stop",
                    "heartbeat_interval_seconds": 30,
                    "session_timeout_seconds": 120,
                    "duration_seconds": 5820.0,
                    "audio": [
                        {"language": "en", "name": "English", "role": "original"},
                        {"language": "de", "name": "Deutsch", "role": "dub"},
                    ],
                    "subtitles": [{"language": "en", "name": "English"}],
                    "protection": "aes128",
                    "dash_manifest_url": None,
                    "license_url": None,
                }
            ]
        }
    )

    session_id: str
    ticket_id: str
    title_id: str
    master_playlist_url: str
    refresh_url: str
    heartbeat_url: str
    stop_url: str
    heartbeat_interval_seconds: int
    session_timeout_seconds: int
    duration_seconds: float | None
    audio: list[AudioTrackRead]
    subtitles: list[SubtitleTrackRead]
    protection: str = Field(
        description="aes128: keys from the key route; cbcs: keys only by DRM license"
    )
    dash_manifest_url: str | None = Field(description="The DASH manifest (cbcs releases)")
    license_url: str | None = Field(
        description="The license proxy for cbcs releases; replace {system} with widevine, "
        "playready, fairplay or clearkey"
    )


class Seek(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"position_seconds": 2400.0}]}
    )

    position_seconds: float | None = Field(
        default=None, ge=0, le=86_400, description="Playhead after a seek: moves the key periods"
    )


class Heartbeat(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"seq": 42, "position_seconds": 1864.5, "watched_seconds": 30.0}]
        },
    )

    seq: int = Field(ge=0, le=10_000_000, description="Increases by one per heartbeat")
    position_seconds: float = Field(ge=0, le=86_400, description="Playhead position")
    watched_seconds: float = Field(
        ge=0, le=3_600, description="Seconds actually played since the previous heartbeat"
    )


class HeartbeatRead(GrantRead):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "token": "eyJzIjoiYzQxZDdlOWEiLCJ0IjoiM2YyYjljMWQifQ.q1w2e3r4t5y6u7i8o9p0aa",
                    "token_expires_at": "2026-03-01T20:01:00Z",
                    "key_periods": [0, 1],
                    "session_id": "c41d7e9a0b2f4c6d8e1a3b5c7d9e0f12",
                    "alive_until": "2026-03-01T20:02:00Z",
                    "recorded": True,
                }
            ]
        }
    )

    session_id: str
    alive_until: datetime = Field(description="Send the next heartbeat before this time")
    recorded: bool = Field(description="False when this seq was already received")
