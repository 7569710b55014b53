"""Each session's A/B sequence: which watermark variant it gets of every segment.

A watermarked rung has two encodes, A and B, packaged side by side with the same timing
(``video_720p/seg_00007.m4s`` and ``video_720p.b/seg_00007.m4s``). A session's codeword is
one bit per segment, derived from its session id; its per-session playlists list, for
segment ``n``, the folder of variant ``bit(n)``, and the media route serves it nothing else.
A captured copy therefore spells the codeword of the session it was captured from, which
``pocketcinema watermark detect`` reads back (forensics/).

Both protection profiles name segments by their place on the film's timeline: the HLS
AES-128 package ``seg_00007.m4s``, the cbcs (CMAF) package ``p1_seg_00007.m4s`` (key period
1, segment 7 of the film: its pieces are numbered on from the previous period's), so the
segment index, and with it the bit, is read from the file name alone.

A release may mark only every ``every``-th segment (segments 0, k, 2k, ...; the watermark
profile's ``every``): the others exist in variant A only and carry no bit, which cuts
variant B's encode and storage by about that factor and lengthens the shortest capture
that names a session by the same factor.

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
# Segment files as our packagers name them (Shaka's $Number$, from 1 at the film's start;
# the cbcs package prefixes the key period).
_SEGMENT = re.compile(r"(?:p\d{1,5}_)?seg_(\d{1,9})\.m4s")


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


def carries_bit(index: int, every: int = 1) -> bool:
    """Does segment ``index`` come in two variants (one bit of the codeword)?"""
    return index % every == 0


def marked_segments(count: int, every: int = 1) -> list[int]:
    """The indexes among the first ``count`` segments that carry a bit."""
    return [i for i in range(count) if carries_bit(i, every)]


def _variant(session_id: str, name: str, every: int) -> int | None:
    """1 (B) or 0 (A) for a segment that carries a bit; None for any other file."""
    index = segment_index(name)
    if index is None or not carries_bit(index, every):
        return None
    return bit(session_id, index)


def session_path(session_id: str, rel_path: str, marked: frozenset[str], every: int = 1) -> str:
    """The file this session gets for ``rel_path`` (a path in a packaged playlist)."""
    folder, _, name = rel_path.rpartition("/")
    if folder not in marked or not _variant(session_id, name, every):
        return rel_path
    return f"{variant_folder(folder)}/{name}"


def allowed(session_id: str, rel_path: str, marked: frozenset[str], every: int = 1) -> bool:
    """May this session fetch ``rel_path``? In a marked rendition only its own variant of
    each segment (the other would let a pirate blur the codeword) and A's other files."""
    folder, _, name = rel_path.rpartition("/")
    if folder.endswith(VARIANT_SUFFIX) and folder.removesuffix(VARIANT_SUFFIX) in marked:
        return _variant(session_id, name, every) == 1
    if folder in marked:
        return _variant(session_id, name, every) != 1
    return True
