"""HLS packaging: CMAF segments, alternate audio, WebVTT subtitles, I-frame playlists,
encryption, and a master playlist whose numbers come from the produced segments.

Shaka Packager 3.8 cuts the fMP4 (CMAF) segments. Encryption has two schemes (see
docs/transcoding.md for the evidence behind the default):

* ``aes-128`` (default): HLS METHOD=AES-128, whole-segment AES-128-CBC with PKCS#7, applied
  by us to the finished segment files. Every HLS player implements it with a plain key
  fetched from the key URI (hls.js in software, ExoPlayer's Aes128DataSource, AVPlayer).
  FFmpeg's HLS muxer cannot do this for fMP4 and Shaka does not offer it at all.
* ``sample-aes``: Shaka's ``cbcs`` (METHOD=SAMPLE-AES, KEYFORMAT="identity"). Only the
  sample payloads are encrypted; the same segments could later carry FairPlay/Widevine.
  hls.js and ExoPlayer do not fetch an identity key for SAMPLE-AES fMP4, so it is opt-in.

FFmpeg's own HLS client decodes both frame-exact with the key and cannot without it
(tests/transcoding/test_pipeline.py).

Subtitles are written by our own code (transcoding.subtitles) because Shaka's WebVTT
segments carry no ``X-TIMESTAMP-MAP``, which Apple requires for segmented WebVTT.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import m3u8
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from transcoding import playlists
from transcoding.encode import RenditionFile
from transcoding.policy import DEFAULT_LIMITS, PolicyLimits
from transcoding.subtitles import Cue, write_segmented_webvtt
from transcoding.tools import packager_path, run_tool

AUDIO_GROUP = "audio"
SUBTITLE_GROUP = "subs"
# Apple's media characteristic for commentary and other auxiliary content
# (AVMediaCharacteristic.isAuxiliaryContent). We do not use
# "public.accessibility.describes-video": our commentary explains cultural background, it
# is not audio description for blind viewers, and mislabelling it would make accessibility
# settings auto-select it.
COMMENTARY_CHARACTERISTICS = "public.auxiliary-content"
# Apple's characteristics for audio description and for subtitles for the deaf and hard of
# hearing (SDH); accessibility settings on the device select these renditions.
DESCRIPTION_CHARACTERISTICS = "public.accessibility.describes-video"
SDH_CHARACTERISTICS = (
    "public.accessibility.transcribes-spoken-dialog,public.accessibility.describes-music-and-sound"
)


class EncryptionScheme(StrEnum):
    aes_128 = "aes-128"
    sample_aes = "sample-aes"
    cbcs = "cbcs"  # the cbcs protection profile: CMAF for HLS and DASH (transcoding.cmaf)


class AudioRole(StrEnum):
    original = "original"
    dub = "dub"
    commentary = "commentary"
    description = "description"  # audio description


@dataclass(frozen=True)
class AudioTrack:
    path: Path  # AAC-LC stereo MP4 from transcoding.encode.encode_audio
    language: str  # BCP 47
    name: str  # what the player's menu shows, e.g. "Deutsch", "Director's commentary"
    role: AudioRole = AudioRole.original
    default: bool = False


@dataclass(frozen=True)
class SubtitleTrack:
    cues: Sequence[Cue]
    language: str  # BCP 47
    name: str
    default: bool = False
    forced: bool = False
    sdh: bool = False


@dataclass(frozen=True)
class RenditionLabel:
    """What a player shows of an audio or subtitle rendition; changeable after packaging
    (:func:`relabel_master`) because it lives only in the master playlist."""

    language: str  # BCP 47
    name: str
    default: bool = False
    role: AudioRole | None = None  # audio only
    forced: bool = False  # subtitles only
    sdh: bool = False  # subtitles only


@dataclass(frozen=True)
class ContentKey:
    """A release's content key as the packager needs it (plaintext, in memory only)."""

    key: bytes  # 16 bytes
    key_id: bytes  # 16 bytes
    key_uri_template: str  # e.g. "https://api.example/v1/keys/{key_id}"

    def __post_init__(self) -> None:
        if len(self.key) != 16 or len(self.key_id) != 16:
            raise ValueError("content key and key id must be 16 bytes each")

    @property
    def key_uri(self) -> str:
        return self.key_uri_template.format(key_id=self.key_id.hex())


@dataclass(frozen=True)
class Variant:
    playlist: str  # relative to the master playlist
    bandwidth: int
    average_bandwidth: int
    codecs: str
    resolution: str
    frame_rate: str


@dataclass(frozen=True)
class PackageResult:
    out_dir: Path
    master_playlist: Path
    variants: tuple[Variant, ...]
    audio_playlists: tuple[Path, ...]
    subtitle_playlists: tuple[Path, ...]
    iframe_playlists: tuple[Path, ...]
    encryption: EncryptionScheme | None
    # Why the I-frame playlists (trick play, optional) were left out, if they were.
    iframe_error: str | None = None
    dash_manifest: Path | None = None  # the cbcs profile's MPD over the same segments


def _quoted_safe(value: str) -> str:
    # Quoted-string values may not contain a double quote or a line break (RFC 8216 4.2).
    return re.sub(r'["\r\n]', "'", value)


# --------------------------------------------------------------------------- measurement
def measure_playlist(playlist: Path) -> tuple[int, int]:
    """(peak, average) bits per second over the media segments a playlist lists.

    Peak is the largest single-segment rate (what HLS means by BANDWIDTH); average is all
    segment bytes over the total duration (AVERAGE-BANDWIDTH). Init segments are left out,
    as RFC 8216 section 4.4.6.2 says.
    """
    peak = 0.0
    total_bits = 0
    total_seconds = 0.0
    for segment in playlists.load(playlist).segments:
        if not segment.duration or not segment.uri:
            continue
        if segment.byterange:
            bits = int(str(segment.byterange).split("@")[0]) * 8
        else:
            bits = (playlist.parent / segment.uri).stat().st_size * 8
        peak = max(peak, bits / segment.duration)
        total_bits += bits
        total_seconds += segment.duration
    average = total_bits / total_seconds if total_seconds else 0.0
    return round(peak), round(average)


# ----------------------------------------------------------------------------- packaging
def _descriptor(fields: Mapping[str, str]) -> str:
    for value in fields.values():
        if "," in value or "=" in value:
            raise ValueError(f"packager field value may not contain ',' or '=': {value!r}")
    return ",".join(f"{k}={v}" for k, v in fields.items())


def _safe_name(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", value)


def video_folder(rung_name: str) -> str:
    """The folder a rung's segments are packaged into."""
    return f"video_{_safe_name(rung_name)}"


def package_hls(
    renditions: Sequence[RenditionFile],
    out_dir: Path,
    *,
    duration: float,
    audio: Sequence[AudioTrack] = (),
    subtitles: Sequence[SubtitleTrack] = (),
    segment_seconds: float = 6.0,
    key: ContentKey | None = None,
    scheme: EncryptionScheme = EncryptionScheme.aes_128,
    rotation_keys: Sequence[ContentKey] = (),
    rotate_every_segments: int | None = None,
    limits: PolicyLimits = DEFAULT_LIMITS,
) -> PackageResult:
    """Package encoded rungs and audio tracks into an HLS presentation under ``out_dir``.

    Key rotation (AES-128 only): with ``rotate_every_segments=N`` segment ``i`` of every
    playlist is encrypted with ``[key, *rotation_keys][min(i // N, count - 1)]``, so the
    same stretch of film uses the same key in every rendition (one key per key period).

    ``out_dir`` is replaced: packaging is idempotent so a retried task starts clean.
    """
    if not renditions:
        raise ValueError("nothing to package")
    if (rotation_keys or rotate_every_segments) and (
        key is None or scheme is not EncryptionScheme.aes_128
    ):
        raise ValueError("key rotation needs a first key and the aes-128 scheme")
    # Shaka Packager runs inside out_dir and is given paths under it: a relative out_dir
    # would be taken from there (out_dir/out_dir/...).
    out_dir = out_dir.resolve()
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    descriptors: list[str] = []
    iframe_error: str | None = None
    video_playlists: list[str] = []
    iframe_playlists: list[Path] = []
    for rendition in renditions:
        folder = video_folder(rendition.rung.name)
        playlist = f"{folder}.m3u8"
        iframes = f"{folder}_iframes.m3u8"
        video_playlists.append(playlist)
        iframe_playlists.append(out_dir / iframes)
        descriptors.append(
            _descriptor(
                {
                    "in": str(rendition.path.resolve()),
                    "stream": "video",
                    "init_segment": f"{folder}/init.mp4",
                    "segment_template": f"{folder}/seg_$Number%05d$.m4s",
                    "playlist_name": playlist,
                    "iframe_playlist_name": iframes,
                }
            )
        )
    audio_by_uri: dict[str, AudioTrack] = {}
    for n, track in enumerate(audio):
        folder = f"audio_{n}_{_safe_name(track.language)}"
        playlist = f"{folder}.m3u8"
        audio_by_uri[playlist] = track
        descriptors.append(
            _descriptor(
                {
                    "in": str(track.path.resolve()),
                    "stream": "audio",
                    "init_segment": f"{folder}/init.mp4",
                    "segment_template": f"{folder}/seg_$Number%05d$.m4s",
                    "playlist_name": playlist,
                    "hls_group_id": AUDIO_GROUP,
                    # Names and languages are rewritten below with exact values; Shaka's
                    # descriptor syntax cannot carry commas or spaces safely.
                    "hls_name": folder,
                }
            )
        )
    argv = [
        packager_path(),
        *descriptors,
        "--segment_duration",
        f"{segment_seconds:g}",
        "--hls_playlist_type",
        "VOD",
        "--hls_master_playlist_output",
        str(out_dir / "master.m3u8"),
        "--quiet",
    ]
    if key is not None and scheme is EncryptionScheme.sample_aes:
        argv += [
            "--protection_scheme",
            "cbcs",
            "--enable_raw_key_encryption",
            "--keys",
            f"label=:key_id={key.key_id.hex()}:key={key.key.hex()}",
            # Encrypt from the first segment: a clear lead would give the film's opening
            # away to anyone holding the URLs.
            "--clear_lead",
            "0",
            "--hls_key_uri",
            key.key_uri,
        ]
    run_tool(argv, timeout=limits.wall_time_for(duration / 4), cwd=out_dir)
    if key is not None and scheme is EncryptionScheme.aes_128:
        # I-frame entries first: they are byte ranges of the clear video segments, and a
        # byte range in the middle of a CBC-encrypted file cannot be decrypted on its own.
        try:
            for iframe_list in iframe_playlists:
                _split_iframe_ranges(iframe_list)
        except (OSError, ValueError) as exc:
            # Trick play is optional: the release plays without it, so drop it, say why.
            iframe_error = f"{type(exc).__name__}: {exc}"
            _drop_iframe_playlists(out_dir / "master.m3u8", iframe_playlists)
            iframe_playlists = []
        for media_list in [
            *(out_dir / p for p in video_playlists),
            *(out_dir / p for p in audio_by_uri),
            *iframe_playlists,
        ]:
            encrypt_playlist_aes128(
                media_list, [key, *rotation_keys], rotate_every=rotate_every_segments
            )

    subtitle_entries: list[tuple[str, SubtitleTrack]] = []
    for n, sub in enumerate(subtitles):
        folder = f"subs_{n}_{_safe_name(sub.language)}"
        write_segmented_webvtt(
            sub.cues,
            out_dir / folder,
            duration=duration,
            segment_seconds=segment_seconds,
            playlist_name="subtitles.m3u8",
        )
        subtitle_entries.append((f"{folder}/subtitles.m3u8", sub))

    master = out_dir / "master.m3u8"
    rewrite_master(master, audio_by_uri, subtitle_entries)
    return PackageResult(
        out_dir=out_dir,
        master_playlist=master,
        variants=variants_of(master),
        audio_playlists=tuple(out_dir / uri for uri in audio_by_uri),
        subtitle_playlists=tuple(out_dir / uri for uri, _ in subtitle_entries),
        iframe_playlists=tuple(iframe_playlists),
        encryption=scheme if key is not None else None,
        iframe_error=iframe_error,
    )


def _aes128_cbc(data: bytes, key: bytes, iv: bytes) -> bytes:
    padder = padding.PKCS7(128).padder()
    padded = padder.update(data) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(padded) + encryptor.finalize()


def _split_iframe_ranges(playlist: Path) -> None:
    """Turn each byte-range I-frame entry into its own small file (the keyframe's fragment)
    so it can be encrypted and decrypted independently of the segment it came from."""
    parsed = playlists.load(playlist)
    for count, segment in enumerate(parsed.segments, start=1):
        if not segment.byterange:
            continue
        size_text, _, offset_text = str(segment.byterange).partition("@")
        uri = playlists.uri_of(segment)
        with (playlist.parent / uri).open("rb") as fh:
            fh.seek(int(offset_text or "0"))
            data = fh.read(int(size_text))
        name = f"{Path(uri).parent}/iframe_{count:05d}.m4s"
        (playlist.parent / name).write_bytes(data)
        segment.uri = name
        segment.byterange = None
    playlists.dump(parsed, playlist)


def _drop_iframe_playlists(master: Path, iframe_lists: Sequence[Path]) -> None:
    """Remove the I-frame playlists, the fragments cut for them and their master entries."""
    for playlist in iframe_lists:
        for fragment in playlist.parent.glob("video_*/iframe_*.m4s"):
            fragment.unlink()
        playlist.unlink(missing_ok=True)
    parsed = playlists.load(master)
    parsed.iframe_playlists = m3u8.PlaylistList()
    playlists.dump(parsed, master)


def encrypt_playlist_aes128(
    playlist: Path, keys: Sequence[ContentKey], *, rotate_every: int | None = None
) -> None:
    """Encrypt every media segment a playlist lists (whole-file AES-128-CBC, PKCS#7) and add
    EXT-X-KEY tags (one per key period when rotating).

    Each key line goes after EXT-X-MAP (:mod:`transcoding.playlists`), so the init segment
    (codec configuration, no media) stays clear and players need no IV rule for it. No IV
    attribute: each segment's IV is its media sequence number (RFC 8216 5.2), so no two
    segments of a playlist share one under the same key.
    """
    if not keys:
        raise ValueError("no key")
    if rotate_every is not None and rotate_every < 1:
        raise ValueError("rotate_every must be at least 1")
    parsed = playlists.load(playlist)
    sequence = int(parsed.media_sequence or 0)
    lines = {id(key): playlists.identity_key("AES-128", key.key_uri) for key in keys}
    for index, segment in enumerate(parsed.segments):
        period = index // rotate_every if rotate_every else 0
        key = keys[min(period, len(keys) - 1)]  # the last key covers any tail
        path = playlist.parent / playlists.uri_of(segment)
        iv = (sequence + index).to_bytes(16, "big")
        path.write_bytes(_aes128_cbc(path.read_bytes(), key.key, iv))
        parsed.segments[index] = playlists.KeyedSegment.of(segment, [lines[id(key)]])
    playlists.dump(parsed, playlist)


def variants_of(master: Path) -> tuple[Variant, ...]:
    """Each variant of a master playlist as written (rates, codecs, resolution, frame rate)."""
    out = []
    for variant in playlists.load(master).playlists:
        info = variant.stream_info
        if not (info.resolution and info.bandwidth and info.average_bandwidth and info.frame_rate):
            raise ValueError(f"{master.name}: a variant without its measured attributes")
        width, height = info.resolution
        out.append(
            Variant(
                playlist=playlists.uri_of(variant),
                bandwidth=info.bandwidth,
                average_bandwidth=info.average_bandwidth,
                codecs=str(info.codecs),
                resolution=f"{width}x{height}",
                frame_rate=f"{info.frame_rate:.3f}",
            )
        )
    return tuple(out)


def rewrite_master(
    master: Path,
    audio_by_uri: Mapping[str, AudioTrack],
    subtitles: Sequence[tuple[str, SubtitleTrack]],
    *,
    renamed: Mapping[str, str] | None = None,
) -> None:
    """Put our exact names, languages and flags on the renditions and the measured rates
    on the variants (Shaka's descriptor syntax cannot express all of them). ``renamed``
    maps playlist URIs the packager wrote to the ones they were moved to."""
    out_dir = master.parent
    parsed = playlists.load(master)
    for item in [*parsed.media, *parsed.playlists]:
        if item.uri is not None and renamed and item.uri in renamed:
            item.uri = renamed[item.uri]
    audio_rates = {uri: measure_playlist(out_dir / uri) for uri in audio_by_uri}
    audio_peak = max((r[0] for r in audio_rates.values()), default=0)
    audio_avg = max((r[1] for r in audio_rates.values()), default=0)
    has_default_audio = any(t.default for t in audio_by_uri.values())
    first_main = next(
        (
            uri
            for uri, t in audio_by_uri.items()
            if t.role not in (AudioRole.commentary, AudioRole.description)
        ),
        None,
    )
    for media in parsed.media:
        if media.type == "AUDIO":
            uri = playlists.uri_of(media)
            track = audio_by_uri[uri]
            is_default = track.default if has_default_audio else uri == first_main
            _label(media, RenditionLabel(track.language, track.name, is_default, role=track.role))
    subtitle_media = []
    for uri, sub in subtitles:
        media = m3u8.Media(uri=uri, type="SUBTITLES", group_id=SUBTITLE_GROUP)
        _label(
            media,
            RenditionLabel(sub.language, sub.name, sub.default, forced=sub.forced, sdh=sub.sdh),
        )
        subtitle_media.append(media)
        parsed.add_media(media)
    for variant in parsed.playlists:
        peak, average = measure_playlist(out_dir / playlists.uri_of(variant))
        variant.stream_info.bandwidth = peak + audio_peak
        variant.stream_info.average_bandwidth = average + audio_avg
        if subtitle_media:
            # The library writes a variant's group attributes from the renditions it lists.
            variant.stream_info.subtitles = SUBTITLE_GROUP
            variant.media += subtitle_media
    playlists.dump(parsed, master)


def _label(media: m3u8.Media, label: RenditionLabel) -> None:
    """Put a label on an EXT-X-MEDIA rendition; its other attributes (URI, GROUP-ID,
    CHANNELS, ASSOC-LANGUAGE, INSTREAM-ID, STABLE-RENDITION-ID...) stay as they are."""
    media.language = _quoted_safe(label.language)
    media.name = _quoted_safe(label.name)
    if media.type == "AUDIO":
        # A commentary must never be picked for the viewer by language alone; audio
        # description is picked by the device's accessibility setting, never by default.
        aside = label.role in (AudioRole.commentary, AudioRole.description)
        media.default = "YES" if label.default and not aside else "NO"
        media.autoselect = "NO" if label.role is AudioRole.commentary else "YES"
        media.channels = media.channels or "2"
        media.characteristics = {
            AudioRole.commentary: COMMENTARY_CHARACTERISTICS,
            AudioRole.description: DESCRIPTION_CHARACTERISTICS,
        }.get(label.role)  # type: ignore[arg-type]
    else:
        media.default = "YES" if label.default else "NO"
        media.autoselect = "YES"
        media.forced = "YES" if label.forced else "NO"
        media.characteristics = SDH_CHARACTERISTICS if label.sdh else None


def relabel_master(master_text: str, labels: Mapping[str, RenditionLabel]) -> str:
    """The master playlist with new labels on the renditions named in ``labels`` (by URI).

    Only EXT-X-MEDIA renditions change: segments, media playlists and keys stay as they
    are, so a studio's correction of a language or a name needs no re-encode."""
    parsed = playlists.loads(master_text)
    for media in parsed.media:
        label = labels.get(media.uri or "")
        if label is not None:
            _label(media, label)
    return playlists.dumps(parsed)
