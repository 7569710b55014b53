"""Each session's A/B sequence: which watermark variant it gets of every segment.

A watermarked rung has two encodes, A and B, packaged side by side with the same timing
(``video_720p/seg_00007.m4s`` and ``video_720p.b/seg_00007.m4s``). A session's codeword is
one bit per segment, derived from its session id; its per-session playlists list, for
segment ``n``, the folder of variant ``bit(n)``, and the media route serves it nothing else.
A captured copy therefore spells the codeword of the session it was captured from, which
``pocketcinema watermark detect`` reads back (forensics/).

The code: codewords are independent uniform random bit strings (SHA-256 in counter mode over a fixed
label and the session id), the random code whose minimum distance grows with its length. Two
sessions' codewords agree on a segment with probability one half, so a copy of ``n``
decided segments matches an innocent session on all but ``k`` of them with the binomial
tail probability the detector turns into its threshold (forensics/detection.py). The
derivation needs no key and no database: session ids are random 128-bit values known only
to their own device, and the codeword must stay readable for as long as a leak may
surface, which a rotating key would not allow.
"""

from __future__ import annotations

import hashlib
import re

LABEL = b"pocketcinema/watermark/v1:"
VARIANT_SUFFIX = ".b"
# Segment files as our packager names them (Shaka's $Number$, from 1).
_SEGMENT = re.compile(r"seg_(\d{1,9})\.m4s")


def _block(session_id: str, number: int) -> bytes:
    # SHA-256 in counter mode (256 bits a block) rather than an XOF: a CDN edge function
    # has SHA-256 and can check the same bits (infra/edge/grant-check.js).
    return hashlib.sha256(LABEL + f"{session_id}:{number}".encode()).digest()


def codeword(session_id: str, length: int) -> list[int]:
    """The session's first ``length`` bits (one per segment, 0 = variant A)."""
    data = b"".join(_block(session_id, n) for n in range((length + 255) // 256))
    return [(data[i >> 3] >> (i & 7)) & 1 for i in range(length)]


def bit(session_id: str, index: int) -> int:
    """Bit ``index`` (0-based segment index) of the session's codeword."""
    data = _block(session_id, index >> 8)
    return (data[(index & 255) >> 3] >> (index & 7)) & 1


def variant_folder(folder: str) -> str:
    """Where variant B of a rendition folder lives."""
    return folder + VARIANT_SUFFIX


def segment_index(name: str) -> int | None:
    """0-based index of a media segment file name, None for anything else (init segment,
    I-frame fragments: those come from variant A only)."""
    found = _SEGMENT.fullmatch(name)
    return int(found.group(1)) - 1 if found else None


def session_path(session_id: str, rel_path: str, marked: frozenset[str]) -> str:
    """The file this session gets for ``rel_path`` (a path in a packaged playlist)."""
    folder, _, name = rel_path.rpartition("/")
    if folder not in marked:
        return rel_path
    index = segment_index(name)
    if index is None or not bit(session_id, index):
        return rel_path
    return f"{variant_folder(folder)}/{name}"


def allowed(session_id: str, rel_path: str, marked: frozenset[str]) -> bool:
    """May this session fetch ``rel_path``? In a marked rendition only its own variant of
    each segment (the other would let a pirate blur the codeword) and A's other files."""
    folder, _, name = rel_path.rpartition("/")
    if folder.endswith(VARIANT_SUFFIX) and folder.removesuffix(VARIANT_SUFFIX) in marked:
        index = segment_index(name)
        return index is not None and bit(session_id, index) == 1
    if folder in marked:
        index = segment_index(name)
        return index is None or bit(session_id, index) == 0
    return True
