"""Which audio and subtitle tracks a release has: detected from the master and the sidecars.

Pure functions over a :class:`~transcoding.probe.ProbeResult`: no FFmpeg, no database.

* Every audio stream of the master becomes a track, except mono streams, which studios'
  post houses use as channels (MXF OP1a carries one PCM channel per track): they are
  grouped into stereo, 5.1 or 7.1 tracks by a channel map. The default map pairs mono
  streams into stereo tracks (1-2, 3-4, ...), and six or more start with a 5.1 track
  (1-6, then 7-8, ...). A studio's map is a list of groups of audio stream numbers (from 1,
  in file order): ``[[1, 2, 3, 4, 5, 6], [7, 8]]``.
* Languages come from each stream's own tag, mapped to BCP 47 (``zho``/``chi`` -> ``zh``);
  an untagged track gets the title's original language and a warning.
* Roles come from the stream's disposition (comment, visual impaired, dub, original),
  else from the language: the title's original language is the original, others are dubs.
* Text subtitle streams become WebVTT renditions with their forced and SDH flags; bitmap
  subtitles (PGS, DVB, VobSub) are listed as unsupported with a warning (they need OCR).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from catalog.locales import bcp47_from_media_tag, language_name
from catalog.models import TrackKind, TrackRole, TrackStatus
from catalog.tracks import DetectedTrack
from core.errors import InvalidInput
from transcoding.probe import AudioStream, ProbeResult, SubtitleStream

# FFmpeg channel names of each grouped layout, in the order of SMPTE ST 428 / broadcast
# track layouts (L R C LFE Ls Rs [Lrs Rrs]).
GROUP_LAYOUTS: dict[int, tuple[str, tuple[str, ...]]] = {
    2: ("stereo", ("FL", "FR")),
    6: ("5.1", ("FL", "FR", "FC", "LFE", "BL", "BR")),
    8: ("7.1", ("FL", "FR", "FC", "LFE", "BL", "BR", "SL", "SR")),
}
_LAYOUT_BY_CHANNELS = {1: "mono", 2: "stereo", 6: "5.1", 8: "7.1"}


@dataclass(frozen=True)
class Warning:
    code: str
    detail: str


@dataclass(frozen=True)
class AudioGroup:
    """One audio track of the master: a stream on its own, or mono streams joined."""

    streams: tuple[AudioStream, ...]
    layout: str  # FFmpeg channel layout name of the track

    @property
    def source(self) -> str:
        if len(self.streams) == 1:
            return f"stream:{self.streams[0].index}"
        return "streams:" + "+".join(str(s.index) for s in self.streams)

    @property
    def channels(self) -> int:
        return sum(s.channels for s in self.streams)


@dataclass(frozen=True)
class SidecarInfo:
    """An uploaded dub, commentary or subtitle file as detection needs it."""

    asset_id: str
    kind: str  # "audio", "commentary" or "subtitle" (catalog.models.AssetKind values)
    language: str | None
    name: str | None
    codec: str | None = None
    channels: int | None = None


def default_channel_map(audio: Sequence[AudioStream]) -> list[list[int]]:
    """The map used when the studio set none (stream numbers from 1, in file order)."""
    numbers = list(range(1, len(audio) + 1))
    if len(audio) < 2 or any(s.channels != 1 for s in audio):
        return [[n] for n in numbers]
    groups: list[list[int]] = []
    if len(numbers) >= 6:
        groups.append(numbers[:6])
        numbers = numbers[6:]
    while numbers:
        groups.append(numbers[:2])
        numbers = numbers[2:]
    return groups


def plan_audio_groups(
    probe: ProbeResult, channel_map: Sequence[Sequence[int]] | None
) -> tuple[list[AudioGroup], list[Warning]]:
    """The master's audio tracks under ``channel_map`` (None: the default map).

    A studio's map that does not fit the master is refused with ``channel_map_invalid``."""
    audio = probe.audio
    groups_in = channel_map if channel_map is not None else default_channel_map(audio)
    used: set[int] = set()
    groups: list[AudioGroup] = []
    for group in groups_in:
        if not group:
            raise InvalidInput("a channel map group is empty", code="channel_map_invalid")
        for number in group:
            if not 1 <= number <= len(audio):
                raise InvalidInput(
                    f"channel map names audio stream {number}; the master has {len(audio)}",
                    code="channel_map_invalid",
                )
            if number in used:
                raise InvalidInput(
                    f"channel map uses audio stream {number} twice", code="channel_map_invalid"
                )
            used.add(number)
        streams = tuple(audio[n - 1] for n in group)
        if len(streams) == 1:
            only = streams[0]
            layout = only.channel_layout or _LAYOUT_BY_CHANNELS.get(only.channels, "")
            groups.append(AudioGroup(streams, layout or f"{only.channels} channels"))
            continue
        if any(s.channels != 1 for s in streams):
            raise InvalidInput(
                "only mono audio streams can be grouped into one track; group "
                f"{list(group)} has a stream with more than one channel",
                code="channel_map_invalid",
            )
        if len(streams) not in GROUP_LAYOUTS:
            raise InvalidInput(
                f"a group of {len(streams)} mono streams has no layout; use 2 (stereo), "
                "6 (5.1: L R C LFE Ls Rs) or 8 (7.1)",
                code="channel_map_invalid",
            )
        groups.append(AudioGroup(streams, GROUP_LAYOUTS[len(streams)][0]))
    warnings = [
        Warning(
            "audio_not_in_channel_map",
            f"audio stream {n} (#{audio[n - 1].index}) is not in the channel map and is "
            "not published",
        )
        for n in range(1, len(audio) + 1)
        if n not in used
    ]
    return groups, warnings


def _primary(tag: str) -> str:
    return tag.split("-")[0]


def _audio_name(language: str, role: TrackRole, layout: str, title: str | None) -> str:
    if title and title.strip():
        return title.strip()[:100]
    base = language_name(language)
    if role is TrackRole.commentary:
        base = f"Commentary ({base})"
    elif role is TrackRole.description:
        base = f"Audio description ({base})"
    return f"{base} {layout}" if layout in ("5.1", "7.1") else base


def _audio_role(stream: AudioStream, language: str, original_language: str) -> TrackRole:
    if stream.comment:
        return TrackRole.commentary
    if stream.visual_impaired:
        return TrackRole.description
    if stream.dub:
        return TrackRole.dub
    if stream.original:
        return TrackRole.original
    return (
        TrackRole.original if _primary(language) == _primary(original_language) else TrackRole.dub
    )


def _subtitle_flags(stream: SubtitleStream) -> tuple[bool, bool]:
    words = (stream.title or "").lower()
    forced = stream.forced or "forced" in words
    sdh = stream.hearing_impaired or "sdh" in words.split() or "(sdh)" in words
    return forced, sdh


def detect_tracks(
    probe: ProbeResult,
    sidecars: Sequence[SidecarInfo],
    *,
    original_language: str,
    channel_map: Sequence[Sequence[int]] | None = None,
) -> tuple[list[DetectedTrack], list[Warning]]:
    """Every track of a release, in the order players list them, and what to warn about."""
    groups, warnings = plan_audio_groups(probe, channel_map)
    audio: list[DetectedTrack] = []
    for number, group in enumerate(groups, start=1):
        first = group.streams[0]
        tags = {s.language for s in group.streams}
        tag = first.language if len(tags) == 1 else None
        language = bcp47_from_media_tag(tag, title=first.title)
        if language is None:
            language = original_language
            warnings.append(
                Warning(
                    "audio_language_untagged",
                    f"audio track {number} ({group.source}) has no usable language tag "
                    f"({tag or 'none'}); labelled {language}, the title's original language. "
                    "Correct it in the release's tracks if that is wrong.",
                )
            )
        role = _audio_role(first, language, original_language)
        audio.append(
            DetectedTrack(
                kind=TrackKind.audio,
                source=group.source,
                codec=first.codec,
                channels=group.channels,
                channel_layout=group.layout,
                language=language,
                detected_language=tag,
                name=_audio_name(language, role, group.layout, first.title),
                role=role,
                is_default=first.default,
                forced=False,
                sdh=False,
                status=TrackStatus.published,
            )
        )
    for car in sidecars:
        if car.kind not in ("audio", "commentary"):
            continue
        language = car.language or original_language
        role = TrackRole.commentary if car.kind == "commentary" else TrackRole.dub
        audio.append(
            DetectedTrack(
                kind=TrackKind.audio,
                source=f"asset:{car.asset_id}",
                codec=car.codec,
                channels=car.channels,
                channel_layout=_LAYOUT_BY_CHANNELS.get(car.channels or 0),
                language=language,
                detected_language=car.language,
                name=car.name or _audio_name(language, role, "", None),
                role=role,
                is_default=False,
                forced=False,
                sdh=False,
                status=TrackStatus.published,
            )
        )
    _one_default(audio, original_language)

    subtitles: list[DetectedTrack] = []
    uploaded = []
    for car in sidecars:
        if car.kind != "subtitle":
            continue
        language = car.language or original_language
        uploaded.append(language)
        subtitles.append(
            DetectedTrack(
                kind=TrackKind.subtitle,
                source=f"asset:{car.asset_id}",
                codec="webvtt",
                channels=None,
                channel_layout=None,
                language=language,
                detected_language=car.language,
                name=car.name or language_name(language),
                role=None,
                is_default=False,
                forced=False,
                sdh=False,
                status=TrackStatus.published,
            )
        )
    for stream in probe.subtitles:
        language = bcp47_from_media_tag(stream.language, title=stream.title)
        label = f"subtitle stream #{stream.index} ({stream.codec})"
        if not stream.is_text:
            warnings.append(
                Warning(
                    "subtitle_needs_ocr",
                    f"{label} is a bitmap subtitle; it needs OCR to become text and is not "
                    "published. Upload it as an SRT or WebVTT file.",
                )
            )
        elif language is None:
            warnings.append(
                Warning(
                    "subtitle_language_untagged",
                    f"{label} has no usable language tag ({stream.language or 'none'}); "
                    f"labelled {original_language}, the title's original language.",
                )
            )
        if stream.is_text and (language or original_language) in uploaded:
            continue  # an uploaded file in the same language replaces the embedded stream
        language = language or original_language
        forced, sdh = _subtitle_flags(stream)
        name = (stream.title or "").strip()[:100] or language_name(language)
        subtitles.append(
            DetectedTrack(
                kind=TrackKind.subtitle,
                source=f"stream:{stream.index}",
                codec=stream.codec,
                channels=None,
                channel_layout=None,
                language=language,
                detected_language=stream.language,
                name=name,
                role=None,
                is_default=stream.default and stream.is_text and not forced,
                forced=forced,
                sdh=sdh,
                status=TrackStatus.published if stream.is_text else TrackStatus.unsupported,
            )
        )
    _one_default(subtitles, None)
    return [*audio, *subtitles], warnings


def _one_default(found: list[DetectedTrack], original_language: str | None) -> None:
    """At most one default per kind; audio always has one (never a commentary)."""
    candidates = [
        n
        for n, t in enumerate(found)
        if t.is_default and t.role not in (TrackRole.commentary, TrackRole.description)
    ]
    chosen: int | None = candidates[0] if candidates else None
    if chosen is None and original_language is not None:
        chosen = next(
            (n for n, t in enumerate(found) if t.role is TrackRole.original),
            next((n for n, t in enumerate(found) if t.role is TrackRole.dub), None),
        )
    for n, track in enumerate(found):
        if track.is_default != (n == chosen):
            found[n] = replace(track, is_default=n == chosen)
