"""The media pipeline end to end with real FFmpeg and Shaka Packager, checked the way a
player would check it: playlists, segment durations, aligned keyframes, decryption."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import m3u8
import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from core.settings import get_settings
from tests.transcoding.conftest import KeyServer, Masters, ffprobe_json
from transcoding.chunking import plan_chunks
from transcoding.encode import (
    RenditionFile,
    concat_renditions,
    encode_audio,
    encode_ladder,
    extract_text_subtitles,
)
from transcoding.images import (
    ThumbnailSprite,
    make_chunk_thumbnails,
    make_poster,
    make_thumbnail_sprite,
    sprite_layout,
    tile_sprite,
)
from transcoding.ladder import LadderProfile, plan_ladder
from transcoding.package import (
    AudioRole,
    AudioTrack,
    ContentKey,
    EncryptionScheme,
    PackageResult,
    SubtitleTrack,
    measure_playlist,
    package_hls,
)
from transcoding.policy import check_audio_sidecar, check_master, check_subtitle_sidecar
from transcoding.subtitles import load_subtitle_file

pytestmark = [pytest.mark.slow, pytest.mark.backend_agnostic]

# The default profile with a fast x264 preset: the tests check structure, not quality
# (ultrafast would drop CABAC and B-frames, so x264 would signal Baseline, not High).
FAST = LadderProfile(name="test", preset="superfast", hevc_rungs_min_height=None)
KEY = bytes.fromhex("0123456789abcdef0123456789abcdef")
KEY_ID = bytes.fromhex("00112233445566778899aabbccddeeff")
CLIENT_PROTOCOLS = "file,http,tcp,crypto,data"  # the test *player*, not the service


def key_uri_template(server: KeyServer) -> str:
    return server.base_url + "/keys/{key_id}"


@dataclass(frozen=True)
class Release:
    package: PackageResult  # AES-128, the default
    cbcs_package: PackageResult  # SAMPLE-AES (cbcs), the opt-in scheme
    renditions: tuple[RenditionFile, ...]
    progress: tuple[float, ...]
    poster: Path
    sprite_vtt: Path
    chunk_sprite: ThumbnailSprite  # tiled from thumbnails each chunk made from its own rung


def keyframe_times(path: Path) -> list[float]:
    data = json.loads(
        ffprobe_json(
            "-select_streams",
            "v:0",
            "-skip_frame",
            "nokey",
            "-show_entries",
            "frame=pts_time",
            str(path),
        )
    )
    return [round(float(f["pts_time"]), 3) for f in data["frames"]]


def framemd5(source: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            get_settings().ffmpeg_path,
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            *extra,
            "-i",
            source,
            "-map",
            "0:v:0",
            "-f",
            "framemd5",
            "-",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def hashes(output: str) -> list[str]:
    return [line.rsplit(",", 1)[1].strip() for line in output.splitlines() if line[:1].isdigit()]


@pytest.fixture(scope="module")
def release(
    masters: Masters, key_server: KeyServer, tmp_path_factory: pytest.TempPathFactory
) -> Release:
    """A 12 s 1080p release through the chunked path: two 6 s chunks encoded separately,
    concatenated, three audio tracks, two subtitle languages, encrypted."""
    work = tmp_path_factory.mktemp("release")
    probe = check_master(masters.hd)
    plan = plan_ladder(probe, FAST)
    chunks = plan_chunks(
        probe.duration or 0, workers=2, segment_seconds=6, min_chunk_seconds=6, chunks_per_worker=1
    )
    assert len(chunks) == 2
    progress: list[float] = []
    parts: dict[str, list[Path]] = {}
    layout = sprite_layout(probe, interval=2.0, columns=3, rows=2)
    for chunk in chunks:
        result = encode_ladder(
            probe, plan, work / f"chunk_{chunk.index}", chunk=chunk, on_progress=progress.append
        )
        for rendition in result.renditions:
            parts.setdefault(rendition.rung.name, []).append(rendition.path)
        make_chunk_thumbnails(
            work / f"chunk_{chunk.index}" / "234p.mp4",
            work / "tiles",
            layout,
            start=chunk.start,
            seconds=(chunk.duration or (probe.duration or 0) - chunk.start),
            fresh=False,
        )
    renditions = tuple(
        RenditionFile(
            rung=rung, path=concat_renditions(parts[rung.name], work / f"{rung.name}.mp4")
        )
        for rung in plan.rungs
    )
    dub = check_audio_sidecar(masters.dub_wav)
    commentary = check_audio_sidecar(masters.commentary_wav)
    audio = [
        AudioTrack(encode_audio(probe, work / "a_en.mp4", profile=FAST), "en", "English"),
        AudioTrack(
            encode_audio(dub, work / "a_de.mp4", profile=FAST), "de", "Deutsch", AudioRole.dub
        ),
        AudioTrack(
            encode_audio(commentary, work / "a_com.mp4", profile=FAST),
            "en",
            "Commentary: the film's background",
            AudioRole.commentary,
        ),
    ]
    subtitles = [
        SubtitleTrack(check_subtitle_sidecar(masters.srt_en), "en", "English"),
        SubtitleTrack(check_subtitle_sidecar(masters.vtt_fr), "fr", "Français"),
    ]
    (key_server.root / "keys").mkdir(exist_ok=True)
    (key_server.root / "keys" / KEY_ID.hex()).write_bytes(KEY)
    content_key = ContentKey(KEY, KEY_ID, key_server.base_url + "/keys/{key_id}")
    package = package_hls(
        renditions,
        work / "hls",
        duration=probe.duration or 0,
        audio=audio,
        subtitles=subtitles,
        segment_seconds=FAST.segment_seconds,
        key=content_key,
    )
    cbcs_package = package_hls(
        renditions,
        work / "hls_cbcs",
        duration=probe.duration or 0,
        audio=audio,
        segment_seconds=FAST.segment_seconds,
        key=content_key,
        scheme=EncryptionScheme.sample_aes,
    )
    poster = make_poster(probe, work / "hls" / "poster.jpg")
    sprite = make_thumbnail_sprite(probe, work / "hls" / "thumbs", interval=2.0, columns=3, rows=2)
    chunk_sprite = tile_sprite(work / "tiles", work / "chunk_sprite", layout)
    return Release(
        package, cbcs_package, renditions, tuple(progress), poster, sprite.vtt, chunk_sprite
    )


def master_lines(release: Release) -> list[str]:
    return release.package.master_playlist.read_text().splitlines()


def test_master_lists_every_rung_with_measured_attributes(release: Release) -> None:
    lines = master_lines(release)
    assert lines[0] == "#EXTM3U"
    master = m3u8.loads("\n".join(lines))
    infs = [v.stream_info for v in master.playlists]
    assert sorted(i.resolution for i in infs if i.resolution) == sorted(
        [(1920, 1080), (1280, 720), (960, 540), (640, 360), (416, 234)]
    )
    for inf, variant in zip(infs, release.package.variants, strict=True):
        assert inf.codecs
        assert inf.codecs.startswith("avc1.64")  # High profile, level from the stream
        assert inf.codecs.endswith(",mp4a.40.2")
        assert inf.frame_rate == pytest.approx(24)
        assert inf.closed_captions == "NONE"
        peak, average = measure_playlist(release.package.out_dir / variant.playlist)
        assert inf.bandwidth
        assert inf.average_bandwidth
        assert inf.bandwidth > peak  # video peak plus the audio group's peak
        assert inf.bandwidth >= inf.average_bandwidth > average
    # As written: each variant names its audio and subtitle groups.
    stream_infs = [x for x in lines if x.startswith("#EXT-X-STREAM-INF:")]
    assert all('AUDIO="audio"' in x and 'SUBTITLES="subs"' in x for x in stream_infs)
    assert len(master.iframe_playlists) == 5
    for path in release.package.iframe_playlists:
        assert "#EXT-X-I-FRAMES-ONLY" in path.read_text()


def test_audio_and_subtitle_renditions(release: Release) -> None:
    media = m3u8.loads("\n".join(master_lines(release))).media
    audio = [m for m in media if m.type == "AUDIO"]
    assert [(m.language, m.default, m.autoselect, m.channels) for m in audio] == [
        ("en", "YES", "YES", "2"),
        ("de", "NO", "YES", "2"),
        ("en", "NO", "NO", "2"),
    ]
    assert audio[2].characteristics == "public.auxiliary-content"
    assert audio[2].name == "Commentary: the film's background"
    subs = [m for m in media if m.type == "SUBTITLES"]
    assert [(m.language, m.name, m.forced) for m in subs] == [
        ("en", "English", "NO"),
        ("fr", "Français", "NO"),
    ]
    fr = (release.package.out_dir / str(subs[1].uri)).parent
    first = (fr / "sub_00001.vtt").read_text()
    assert first.startswith("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000")
    assert "Bonjour, cinéma." in first
    assert "Deuxième réplique." in (fr / "sub_00002.vtt").read_text()


def test_segments_respect_the_target_duration(release: Release) -> None:
    for playlist in [
        *(release.package.out_dir / v.playlist for v in release.package.variants),
        *release.package.audio_playlists,
        *release.package.subtitle_playlists,
    ]:
        text = playlist.read_text()
        target = int(text.split("#EXT-X-TARGETDURATION:")[1].split()[0])
        durations = [
            float(x[8:].split(",")[0]) for x in text.splitlines() if x.startswith("#EXTINF:")
        ]
        assert target <= 7
        assert all(d <= target + 0.5 for d in durations)
        assert sum(durations) == pytest.approx(12.0, abs=0.1)
        assert "#EXT-X-ENDLIST" in text


def test_keyframes_align_across_rungs_every_two_seconds(release: Release) -> None:
    times = {r.rung.name: keyframe_times(r.path) for r in release.renditions}
    expected = [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    assert all(t == expected for t in times.values()), times


def test_progress_reports_seconds_encoded(release: Release) -> None:
    assert release.progress
    assert max(release.progress) <= 6.1


@pytest.mark.parametrize("scheme", ["aes-128", "sample-aes"])
def test_encrypted_stream_decodes_with_the_key_and_only_with_it(
    release: Release, key_server: KeyServer, scheme: str
) -> None:
    package = release.package if scheme == "aes-128" else release.cbcs_package
    out = package.out_dir
    clear = hashes(framemd5(str(release.renditions[-1].path)).stdout)
    playlist = out / package.variants[-1].playlist
    method = "AES-128" if scheme == "aes-128" else "SAMPLE-AES"
    key_uri = f"{key_server.base_url}/keys/{KEY_ID.hex()}"
    assert f'#EXT-X-KEY:METHOD={method},URI="{key_uri}"' in playlist.read_text()
    assert 'KEYFORMAT="identity"' in playlist.read_text()

    with_key = framemd5(str(playlist), "-protocol_whitelist", CLIENT_PROTOCOLS)
    assert with_key.returncode == 0, with_key.stderr
    assert hashes(with_key.stdout) == clear

    # Without the key (the key route refuses): the player cannot open the stream.
    key_file = key_server.root / "keys" / KEY_ID.hex()
    key_file.rename(key_file.with_suffix(".off"))
    try:
        no_key = framemd5(str(playlist), "-protocol_whitelist", CLIENT_PROTOCOLS)
    finally:
        key_file.with_suffix(".off").rename(key_file)
    assert no_key.returncode != 0 or hashes(no_key.stdout) != clear

    # Reading the segments directly, bypassing the key: nothing or garbage decodes.
    folder = out / playlist.stem
    raw = out / "raw.mp4"
    raw.write_bytes((folder / "init.mp4").read_bytes() + (folder / "seg_00001.m4s").read_bytes())
    direct = framemd5(str(raw))
    raw.unlink()
    decoded = hashes(direct.stdout)
    assert not set(decoded) & set(clear)


def decrypt_aes128(data: bytes, sequence: int) -> bytes:
    decryptor = Cipher(algorithms.AES(KEY), modes.CBC(sequence.to_bytes(16, "big"))).decryptor()
    padded = decryptor.update(data) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def test_aes128_iframe_entries_are_the_keyframes(release: Release, tmp_path: Path) -> None:
    """Each I-frame entry, decrypted as a player would (IV = media sequence number), is
    the keyframe that starts its segment. FFmpeg's HLS client has no I-frame-only mode, so
    the entries are checked one by one."""
    rendition = release.renditions[-1]
    playlist = release.package.iframe_playlists[-1]
    text = playlist.read_text()
    assert "#EXT-X-I-FRAMES-ONLY" in text
    assert "#EXT-X-BYTERANGE" not in text  # standalone files, each encrypted on its own
    assert "METHOD=AES-128" in text
    entries = [x for x in text.splitlines() if x and not x.startswith("#")]
    assert len(entries) == 2
    clear = hashes(framemd5(str(rendition.path)).stdout)
    init = (playlist.parent / entries[0]).parent / "init.mp4"
    for sequence, entry in enumerate(entries):
        data = decrypt_aes128((playlist.parent / entry).read_bytes(), sequence)
        sample = tmp_path / f"iframe_{sequence}.mp4"
        sample.write_bytes(init.read_bytes() + data)
        first = hashes(framemd5(str(sample), "-err_detect", "ignore_err").stdout)[:1]
        assert first == [clear[sequence * 6 * 24]]


def test_key_rotation_every_segment(release: Release, key_server: KeyServer) -> None:
    second = ContentKey(bytes(range(16)), bytes(range(16, 32)), key_uri_template(key_server))
    (key_server.root / "keys" / second.key_id.hex()).write_bytes(second.key)
    first = ContentKey(KEY, KEY_ID, key_uri_template(key_server))
    rendition = release.renditions[-1]
    package = package_hls(
        [rendition],
        release.package.out_dir.parent / "hls_rotated",
        duration=12.0,
        key=first,
        rotation_keys=[second],
        rotate_every_segments=1,
    )
    playlist = package.out_dir / package.variants[0].playlist
    text = playlist.read_text()
    keys = [k for k in m3u8.loads(text).keys if k]
    assert [(k.method, k.uri, k.keyformat, k.iv) for k in keys] == [
        ("AES-128", first.key_uri, "identity", None),
        ("AES-128", second.key_uri, "identity", None),
    ]
    # Each key line follows the EXT-X-MAP and precedes its period's segment: the init
    # segment stays clear.
    tags = [x.split(":", 1)[0] for x in text.splitlines() if x.startswith("#EXT-X-")]
    assert tags[tags.index("#EXT-X-MAP") :] == [
        "#EXT-X-MAP",
        "#EXT-X-KEY",
        "#EXT-X-KEY",
        "#EXT-X-ENDLIST",
    ]
    assert text.index("#EXT-X-KEY") > text.index("#EXT-X-MAP")
    decoded = framemd5(str(playlist), "-protocol_whitelist", CLIENT_PROTOCOLS)
    assert decoded.returncode == 0, decoded.stderr
    assert hashes(decoded.stdout) == hashes(framemd5(str(rendition.path)).stdout)


def test_audio_tracks_decode_with_the_key(release: Release) -> None:
    for playlist in [*release.package.audio_playlists, *release.cbcs_package.audio_playlists]:
        result = subprocess.run(
            [
                get_settings().ffmpeg_path,
                "-nostdin",
                "-v",
                "error",
                "-protocol_whitelist",
                CLIENT_PROTOCOLS,
                "-i",
                str(playlist),
                "-f",
                "null",
                "-",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert not result.stderr.strip()


def test_no_key_material_in_the_output(release: Release) -> None:
    files = [*release.package.out_dir.rglob("*"), *release.cbcs_package.out_dir.rglob("*")]
    for path in files:
        if path.is_file():
            data = path.read_bytes()
            assert KEY not in data
            assert KEY.hex().encode() not in data


def test_poster_and_thumbnail_sprite(release: Release) -> None:
    assert release.poster.read_bytes()[:2] == b"\xff\xd8"
    vtt = release.sprite_vtt.read_text()
    assert vtt.startswith("WEBVTT")
    assert "sprite_1.jpg#xywh=0,0,160,90" in vtt
    assert "sprite_1.jpg#xywh=160,0,160,90" in vtt
    assert (release.sprite_vtt.parent / "sprite_1.jpg").exists()


# --------------------------------------------------------------- masters that vary
def stream_info(path: Path) -> dict[str, object]:
    data = json.loads(ffprobe_json("-show_streams", "-select_streams", "v:0", str(path)))
    stream: dict[str, object] = data["streams"][0]
    return stream


def test_phone_clip_is_rotated_into_a_portrait_ladder(masters: Masters, tmp_path: Path) -> None:
    probe = check_master(masters.phone)
    plan = plan_ladder(probe, FAST)
    result = encode_ladder(probe, plan, tmp_path)
    dims = []
    for rendition in result.renditions:
        info = stream_info(rendition.path)
        dims.append((info["width"], info["height"]))
        assert not info.get("side_data_list")  # rotation baked in, not left as metadata
    assert dims == [(360, 640), (234, 416)]
    out = encode_audio(probe, tmp_path / "mono.mp4", profile=FAST)
    audio = json.loads(ffprobe_json("-show_streams", str(out)))["streams"][0]
    assert (audio["codec_name"], audio["profile"], audio["channels"]) == ("aac", "LC", 2)


def test_interlaced_source_is_deinterlaced(masters: Masters, tmp_path: Path) -> None:
    probe = check_master(masters.interlaced)
    plan = plan_ladder(probe, FAST)
    assert plan.deinterlace
    result = encode_ladder(probe, plan, tmp_path)
    top = stream_info(result.renditions[0].path)
    assert (top["width"], top["height"]) == (768, 576)  # square pixels: SAR 16:15 applied
    assert top["field_order"] == "progressive"
    assert top["avg_frame_rate"] == "25/1"
    # No audio at all: a video-only presentation, still with measured rates.
    package = package_hls(result.renditions, tmp_path / "hls", duration=probe.duration or 0)
    assert package.encryption is None
    text = package.master_playlist.read_text()
    assert "AUDIO=" not in text
    infs = [v.stream_info for v in m3u8.loads(text).playlists]
    assert len(infs) == len(plan.rungs)
    for inf in infs:
        assert inf.codecs
        assert "mp4a" not in inf.codecs
        assert inf.frame_rate == 25
        assert inf.bandwidth
        assert inf.average_bandwidth
        assert inf.bandwidth >= inf.average_bandwidth > 0


def test_ten_bit_five_one_source(masters: Masters, tmp_path: Path) -> None:
    probe = check_master(masters.ten_bit)
    plan = plan_ladder(probe, FAST)
    result = encode_ladder(probe, plan, tmp_path)
    info = stream_info(result.renditions[0].path)
    assert (info["pix_fmt"], info["profile"]) == ("yuv420p", "High")
    loud = FAST.model_copy(update={"audio_loudness_lufs": -24.0})
    out = encode_audio(probe, tmp_path / "surround.mp4", profile=loud)
    audio = json.loads(ffprobe_json("-show_streams", str(out)))["streams"][0]
    assert (audio["channels"], audio["sample_rate"]) == (2, "48000")
    vtt = extract_text_subtitles(probe, probe.subtitles[0], tmp_path / "embedded.vtt")
    cues = load_subtitle_file(vtt)
    assert cues[0].text == "Hello, cinema."


def gray_cells(sheet: Path, columns: int, rows: int, width: int, height: int) -> list[bytes]:
    ffmpeg = get_settings().ffmpeg_path
    raw = subprocess.run(
        [
            ffmpeg,
            "-nostdin",
            "-loglevel",
            "error",
            "-i",
            str(sheet),
            "-f",
            "rawvideo",
            "-pix_fmt",
            "gray",
            "-",
        ],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    stride = columns * width
    return [
        b"".join(
            raw[(r * height + y) * stride + c * width : (r * height + y) * stride + (c + 1) * width]
            for y in range(height)
        )
        for r in range(rows)
        for c in range(columns)
    ]


def test_thumbnails_made_per_chunk_tile_into_the_whole_film_sprite(release: Release) -> None:
    """The sprite the pipeline tiles from each chunk's thumbnails (made from the chunk's
    234p rung) has the same sheets and cues as one made from the whole master, and every
    thumbnail shows the same moment: it is nearer its whole-film twin than any other."""
    whole = release.sprite_vtt.parent
    chunked = release.chunk_sprite
    assert chunked.vtt.read_text() == release.sprite_vtt.read_text()
    assert [p.name for p in chunked.images] == ["sprite_1.jpg"]
    size = (3, 2, chunked.tile_width, chunked.tile_height)
    ours = gray_cells(chunked.images[0], *size)
    theirs = gray_cells(whole / "sprite_1.jpg", *size)

    def distance(a: bytes, b: bytes) -> float:
        return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)

    for i, cell in enumerate(ours):
        distances = [distance(cell, other) for other in theirs]
        assert distances.index(min(distances)) == i, distances
        assert distances[i] < 12, distances  # grey levels: a JPEG of a smaller rung, same frame


def test_a_relative_output_folder_packages_in_place(
    release: Release, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shaka Packager runs inside the output folder: a relative folder name (what a script
    run from the repository root passes) must still put the playlists there, I-frame
    playlists included, and not in a copy of the path below it."""
    monkeypatch.chdir(tmp_path)
    rendition = release.renditions[-1]
    package = package_hls(
        [rendition],
        Path("out") / "hls",
        duration=4.0,
        segment_seconds=FAST.segment_seconds,
        key=ContentKey(KEY, KEY_ID, "https://keys.example/{key_id}"),
    )
    assert package.master_playlist == tmp_path / "out" / "hls" / "master.m3u8"
    assert package.master_playlist.is_file()
    assert package.iframe_playlists
    assert all(
        p.is_file() and p.parent == tmp_path / "out" / "hls" for p in package.iframe_playlists
    )
    assert not (tmp_path / "out" / "hls" / "out").exists()
