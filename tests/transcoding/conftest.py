"""Short synthetic masters made with FFmpeg's lavfi sources, once per test session."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from core.settings import get_settings


def ffmpeg(*args: str) -> None:
    subprocess.run(
        [get_settings().ffmpeg_path, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args],
        check=True,
    )


def ffprobe_json(*args: str) -> str:
    return subprocess.run(
        [get_settings().ffprobe_path, "-v", "error", "-of", "json", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


@dataclass(frozen=True)
class Masters:
    hd: Path  # 1920x1080 24 fps, 12 s, stereo, MP4
    qhd: Path  # 2560x1440, 4 s (probe and plan only)
    phone: Path  # 640x360 stored, rotation 90 (shown 360x640), 30 fps, mono, MOV
    interlaced: Path  # MPEG-2 720x576i 25, no audio, MPEG-TS
    ten_bit: Path  # H.264 High 10, 5.1 audio, embedded SRT, Matroska
    dub_wav: Path  # German dub, stereo
    commentary_wav: Path  # English commentary, mono
    srt_en: Path
    vtt_fr: Path


SRT_EN = """1
00:00:01,000 --> 00:00:03,500
<font color="#ffffff">Hello</font>, cinema.

2
00:00:05,000 --> 00:00:07,000
A line across the segment boundary.
"""

VTT_FR = """WEBVTT

NOTE made for the tests

00:01.000 --> 00:03.000 line:90%
Bonjour, cinéma.

00:00:08.000 --> 00:00:10.000
Deuxième réplique.
"""


@pytest.fixture(scope="session")
def masters(tmp_path_factory: pytest.TempPathFactory) -> Masters:
    d = tmp_path_factory.mktemp("masters")
    x264 = ["-c:v", "libx264", "-preset", "ultrafast", "-g", "24"]
    hd = d / "hd.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=s=1920x1080:r=24:d=12",
        "-f", "lavfi", "-i", "sine=f=440:d=12:sample_rate=48000",
        "-ac", "2", *x264, "-pix_fmt", "yuv420p", "-c:a", "aac",
        "-metadata:s:a:0", "language=eng", str(hd),
    )  # fmt: skip
    qhd = d / "qhd.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=s=2560x1440:r=24:d=4", *x264, "-pix_fmt", "yuv420p", str(qhd)
    )
    flat = d / "phone_flat.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=s=640x360:r=30:d=8",
        "-f", "lavfi", "-i", "sine=f=660:d=8", "-ac", "1", *x264, "-pix_fmt", "yuv420p",
        "-c:a", "aac", str(flat),
    )  # fmt: skip
    phone = d / "phone.mov"
    ffmpeg("-display_rotation:v:0", "90", "-i", str(flat), "-c", "copy", str(phone))
    interlaced = d / "interlaced.ts"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=s=720x576:r=25:d=8,setsar=16/15",
        "-c:v", "mpeg2video", "-b:v", "4M", "-flags", "+ilme+ildct", "-top", "1",
        "-field_order", "tt", "-an", str(interlaced),
    )  # fmt: skip
    srt_en = d / "en.srt"
    srt_en.write_text(SRT_EN, encoding="utf-8")
    vtt_fr = d / "fr.vtt"
    vtt_fr.write_text(VTT_FR, encoding="utf-8")
    ten_bit = d / "ten_bit.mkv"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=s=640x360:r=24:d=8",
        "-f", "lavfi", "-i", "sine=f=330:d=8,aformat=channel_layouts=5.1",
        "-i", str(srt_en),
        "-map", "0", "-map", "1", "-map", "2",
        *x264, "-pix_fmt", "yuv420p10le", "-profile:v", "high10",
        "-c:a", "flac", "-c:s", "srt", "-metadata:s:s:0", "language=eng", str(ten_bit),
    )  # fmt: skip
    dub_wav = d / "dub_de.wav"
    ffmpeg("-f", "lavfi", "-i", "sine=f=550:d=12:sample_rate=48000", "-ac", "2", str(dub_wav))
    commentary_wav = d / "commentary_en.wav"
    ffmpeg(
        "-f", "lavfi", "-i", "sine=f=770:d=12:sample_rate=44100", "-ac", "1", str(commentary_wav)
    )
    return Masters(
        hd=hd,
        qhd=qhd,
        phone=phone,
        interlaced=interlaced,
        ten_bit=ten_bit,
        dub_wav=dub_wav,
        commentary_wav=commentary_wav,
        srt_en=srt_en,
        vtt_fr=vtt_fr,
    )


@dataclass(frozen=True)
class KeyServer:
    base_url: str
    root: Path


@pytest.fixture(scope="session")
def key_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyServer]:
    """Stands in for the key-delivery route: serves files under root on 127.0.0.1."""
    root = tmp_path_factory.mktemp("keys")

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield KeyServer(base_url=f"http://127.0.0.1:{server.server_address[1]}", root=root)
    finally:
        server.shutdown()
