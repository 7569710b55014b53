"""Release tracks in the database: a studio's corrections survive a new detection."""

from __future__ import annotations

from dataclasses import replace

import pytest

from catalog import service as catalog
from catalog import tracks
from catalog.models import TrackKind, TrackRole, TrackStatus
from catalog.tracks import DetectedTrack, TrackChanges
from core.db import unit_of_work
from core.errors import InvalidInput
from tests.helpers import create_studio, create_title

ZH = DetectedTrack(
    kind=TrackKind.audio,
    source="stream:1",
    codec="aac",
    channels=2,
    channel_layout="stereo",
    language="zh",
    detected_language="zho",
    name="Chinese",
    role=TrackRole.original,
    is_default=True,
    forced=False,
    sdh=False,
    status=TrackStatus.published,
)
EN = replace(ZH, source="stream:2", language="en", name="English", role=TrackRole.dub,
             is_default=False, detected_language="eng")  # fmt: skip


def test_corrections_survive_detection_and_one_default_remains(db: None) -> None:
    studio = create_studio()
    title = create_title(studio.id)
    with unit_of_work() as session:
        release = catalog.create_release(
            session, title_id=title.id, studio_id=studio.id, label="Main"
        )
        release_id = release.id
        zh, en = tracks.record_detected(session, release_id, [ZH, EN])
        tracks.apply_changes(session, en, TrackChanges(name="English (UK)", is_default=True))
        assert (zh.is_default, en.is_default) == (False, True)
    with unit_of_work() as session:
        # A new run detects the same streams, with the master's own default on zh.
        again = tracks.record_detected(session, release_id, [ZH, EN])
        assert [(t.language, t.name, t.is_default, t.edited) for t in again] == [
            ("zh", "Chinese", False, False),
            ("en", "English (UK)", True, True),
        ]
        # A stream that is gone takes its row with it.
        (only,) = tracks.record_detected(session, release_id, [ZH])
        assert only.source == "stream:1"
        assert len(tracks.tracks(session, release_id)) == 1


def test_correction_rules(db: None) -> None:
    studio = create_studio()
    title = create_title(studio.id)
    with unit_of_work() as session:
        release = catalog.create_release(
            session, title_id=title.id, studio_id=studio.id, label="Main"
        )
        zh, en = tracks.record_detected(session, release.id, [ZH, EN])
        tracks.apply_changes(session, en, TrackChanges(language="zh_hant_tw"))
        assert en.language == "zh-Hant-TW"
        for changes, code in (
            (TrackChanges(language="klingon!"), "invalid_locale"),
            (TrackChanges(forced=True), "track_field_not_applicable"),
            (TrackChanges(role=TrackRole.commentary), "commentary_not_default"),
        ):
            with pytest.raises(InvalidInput) as info:
                tracks.apply_changes(session, zh, changes)
            assert info.value.code == code
