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


# ---------------------------------------------------------------------------- attributes
_ATTR = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')
_QUOTED = {
    "URI",
    "GROUP-ID",
    "LANGUAGE",
    "NAME",
    "CODECS",
    "AUDIO",
    "SUBTITLES",
    "CHARACTERISTICS",
    "CHANNELS",
    "ASSOC-LANGUAGE",
    "INSTREAM-ID",
    "KEYFORMAT",
    "KEYFORMATVERSIONS",
}


def parse_attributes(line: str) -> dict[str, str]:
    """Attributes of an HLS tag line, quotes removed: '#EXT-X-MEDIA:TYPE=AUDIO,...'."""
    _, _, body = line.partition(":")
    return {key: value.strip('"') for key, value in _ATTR.findall(body)}


def format_attributes(tag: str, attrs: Mapping[str, str]) -> str:
    parts = [f'{k}="{v}"' if k in _QUOTED else f"{k}={v}" for k, v in attrs.items()]
    return f"{tag}:{','.join(parts)}"


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
    for segment in m3u8.load(str(playlist)).segments:
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
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    descriptors: list[str] = []
    iframe_error: str | None = None
    video_playlists: list[str] = []
    iframe_playlists: list[Path] = []
    for rendition in renditions:
        name = _safe_name(rendition.rung.name)
        playlist = f"video_{name}.m3u8"
        iframes = f"video_{name}_iframes.m3u8"
        video_playlists.append(playlist)
        iframe_playlists.append(out_dir / iframes)
        descriptors.append(
            _descriptor(
                {
                    "in": str(rendition.path.resolve()),
                    "stream": "video",
                    "init_segment": f"video_{name}/init.mp4",
                    "segment_template": f"video_{name}/seg_$Number%05d$.m4s",
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
    variants = tuple(
        Variant(
            playlist=uri,
            bandwidth=int(attrs["BANDWIDTH"]),
            average_bandwidth=int(attrs["AVERAGE-BANDWIDTH"]),
            codecs=attrs["CODECS"],
            resolution=attrs["RESOLUTION"],
            frame_rate=attrs["FRAME-RATE"],
        )
        for attrs, uri in stream_infs(master)
    )
    return PackageResult(
        out_dir=out_dir,
        master_playlist=master,
        variants=variants,
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
    lines = playlist.read_text(encoding="utf-8").splitlines()
    out: list[str] = []
    byterange: tuple[int, int] | None = None
    count = 0
    for line in lines:
        if line.startswith("#EXT-X-BYTERANGE:"):
            size_text, _, offset_text = line.split(":", 1)[1].partition("@")
            byterange = (int(size_text), int(offset_text or "0"))
            continue
        if line and not line.startswith("#") and byterange is not None:
            source = playlist.parent / line
            length, offset = byterange
            with source.open("rb") as fh:
                fh.seek(offset)
                data = fh.read(length)
            count += 1
            name = f"{Path(line).parent}/iframe_{count:05d}.m4s"
            (playlist.parent / name).write_bytes(data)
            out.append(name)
            byterange = None
            continue
        out.append(line)
    playlist.write_text("\n".join(out) + "\n", encoding="utf-8")


def _drop_iframe_playlists(master: Path, playlists: Sequence[Path]) -> None:
    """Remove the I-frame playlists, the fragments cut for them and their master entries."""
    for playlist in playlists:
        for fragment in playlist.parent.glob("video_*/iframe_*.m4s"):
            fragment.unlink()
        playlist.unlink(missing_ok=True)
    lines = master.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if not line.startswith("#EXT-X-I-FRAME-STREAM-INF:")]
    master.write_text("\n".join(kept) + "\n", encoding="utf-8")


def encrypt_playlist_aes128(
    playlist: Path, keys: Sequence[ContentKey], *, rotate_every: int | None = None
) -> None:
    """Encrypt every media segment a playlist lists (whole-file AES-128-CBC, PKCS#7) and add
    EXT-X-KEY tags (one per key period when rotating).

    The first tag goes after EXT-X-MAP, so the init segment (codec configuration, no
    media) stays clear and players need no IV rule for it. No IV attribute: each segment's
    IV is its media sequence number (RFC 8216 5.2), so no two segments of a playlist share
    one under the same key.
    """
    if not keys:
        raise ValueError("no key")
    if rotate_every is not None and rotate_every < 1:
        raise ValueError("rotate_every must be at least 1")
    lines = playlist.read_text(encoding="utf-8").splitlines()
    sequence = next(
        (int(x.split(":", 1)[1]) for x in lines if x.startswith("#EXT-X-MEDIA-SEQUENCE:")), 0
    )
    out: list[str] = []
    index = 0  # position in this playlist, drives the key period
    current: ContentKey | None = None
    pending: list[str] = []  # tags between the previous URI and the next one (EXTINF...)
    for line in lines:
        if line and not line.startswith("#"):
            period = index // rotate_every if rotate_every else 0
            key = keys[min(period, len(keys) - 1)]  # the last key covers any tail
            if key is not current:
                out.append(
                    format_attributes(
                        "#EXT-X-KEY",
                        {"METHOD": "AES-128", "URI": key.key_uri, "KEYFORMAT": "identity"},
                    )
                )
                current = key
            segment = playlist.parent / line
            iv = sequence.to_bytes(16, "big")
            segment.write_bytes(_aes128_cbc(segment.read_bytes(), key.key, iv))
            out += [*pending, line]
            pending = []
            sequence += 1
            index += 1
        elif line.startswith(("#EXTINF:", "#EXT-X-BYTERANGE:")):
            pending.append(line)
        else:
            out += [*pending, line]
            pending = []
    out += pending
    playlist.write_text("\n".join(out) + "\n", encoding="utf-8")


def stream_infs(master: Path) -> list[tuple[dict[str, str], str]]:
    """Each variant's EXT-X-STREAM-INF attributes (as written) and playlist URI."""
    parsed = m3u8.load(str(master))
    lines = master.read_text(encoding="utf-8").splitlines()
    tags = [line for line in lines if line.startswith("#EXT-X-STREAM-INF:")]
    return [
        (parse_attributes(tag), str(variant.uri))
        for tag, variant in zip(tags, parsed.playlists, strict=True)
    ]


def rewrite_master(
    master: Path,
    audio_by_uri: Mapping[str, AudioTrack],
    subtitles: Sequence[tuple[str, SubtitleTrack]],
) -> None:
    """Put our exact names, languages and flags on the renditions and the measured rates
    on the variants (Shaka's descriptor syntax cannot express all of them)."""
    out_dir = master.parent
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
    lines = master.read_text(encoding="utf-8").splitlines()
    result: list[str] = []
    pending_stream_inf: dict[str, str] | None = None
    for line in lines:
        if line.startswith("#EXT-X-MEDIA:") and parse_attributes(line).get("TYPE") == "AUDIO":
            attrs = parse_attributes(line)
            track = audio_by_uri[attrs["URI"]]
            is_default = track.default if has_default_audio else attrs["URI"] == first_main
            label = RenditionLabel(track.language, track.name, is_default, role=track.role)
            result.append(format_attributes("#EXT-X-MEDIA", _media_attributes(attrs, label)))
        elif line.startswith("#EXT-X-STREAM-INF:"):
            pending_stream_inf = parse_attributes(line)
        elif pending_stream_inf is not None and line.strip() and not line.startswith("#"):
            attrs = pending_stream_inf
            peak, average = measure_playlist(out_dir / line.strip())
            attrs["BANDWIDTH"] = str(peak + audio_peak)
            attrs["AVERAGE-BANDWIDTH"] = str(average + audio_avg)
            if subtitles:
                attrs["SUBTITLES"] = SUBTITLE_GROUP
            result += [format_attributes("#EXT-X-STREAM-INF", attrs), line]
            pending_stream_inf = None
        else:
            result.append(line)
    media_lines = []
    for uri, sub in subtitles:
        media_lines.append(
            format_attributes(
                "#EXT-X-MEDIA",
                _media_attributes(
                    {"TYPE": "SUBTITLES", "URI": uri, "GROUP-ID": SUBTITLE_GROUP},
                    RenditionLabel(
                        sub.language, sub.name, sub.default, forced=sub.forced, sdh=sub.sdh
                    ),
                ),
            )
        )
    if media_lines:
        at = next(
            (i for i, x in enumerate(result) if x.startswith("#EXT-X-STREAM-INF:")), len(result)
        )
        result[at:at] = [*media_lines, ""]
    master.write_text("\n".join(result) + "\n", encoding="utf-8")


def _media_attributes(attrs: Mapping[str, str], label: RenditionLabel) -> dict[str, str]:
    """An EXT-X-MEDIA line's attributes from its fixed part (TYPE, URI, GROUP-ID, CHANNELS)
    and its label."""
    kind = attrs["TYPE"]
    new = {
        "TYPE": kind,
        "URI": attrs["URI"],
        "GROUP-ID": attrs["GROUP-ID"],
        "LANGUAGE": _quoted_safe(label.language),
        "NAME": _quoted_safe(label.name),
    }
    if kind == "AUDIO":
        # A commentary must never be picked for the viewer by language alone; audio
        # description is picked by the device's accessibility setting, never by default.
        aside = label.role in (AudioRole.commentary, AudioRole.description)
        new["DEFAULT"] = "YES" if label.default and not aside else "NO"
        new["AUTOSELECT"] = "NO" if label.role is AudioRole.commentary else "YES"
        new["CHANNELS"] = attrs.get("CHANNELS", "2")
        if label.role is AudioRole.commentary:
            new["CHARACTERISTICS"] = COMMENTARY_CHARACTERISTICS
        elif label.role is AudioRole.description:
            new["CHARACTERISTICS"] = DESCRIPTION_CHARACTERISTICS
    else:
        new["DEFAULT"] = "YES" if label.default else "NO"
        new["AUTOSELECT"] = "YES"
        new["FORCED"] = "YES" if label.forced else "NO"
        if label.sdh:
            new["CHARACTERISTICS"] = SDH_CHARACTERISTICS
    return new


def relabel_master(master_text: str, labels: Mapping[str, RenditionLabel]) -> str:
    """The master playlist with new labels on the renditions named in ``labels`` (by URI).

    Only EXT-X-MEDIA lines change: segments, media playlists and keys stay as they are, so
    a studio's correction of a language or a name needs no re-encode."""
    out = []
    for line in master_text.splitlines():
        if line.startswith("#EXT-X-MEDIA:"):
            attrs = parse_attributes(line)
            label = labels.get(attrs.get("URI", ""))
            if label is not None:
                line = format_attributes("#EXT-X-MEDIA", _media_attributes(attrs, label))
        out.append(line)
    return "\n".join(out) + "\n"
