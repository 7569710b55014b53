"""From a capture's segment features to a named session, or to no one. Pure functions.

Each segment of the capture is placed between its two references (the mean cell luma of
variants A and B at that segment, transcoding/watermark.py): the projection on B - A,
scaled so that A is -1 and B is +1. A copy carrying neither variant (unmarked, or another
release) lands near 0. A segment whose value is at least ``DECISION`` from 0 is *decided*
(bit 1 above, bit 0 below); the rest are erasures and count for no one.

The decision among sessions: a session whose codeword agrees with ``m`` of ``n`` decided
bits is named when ``candidates x P(Binomial(n, 1/2) >= m) <= target_fpr``. For a session
that did not make the copy each of its bits is a fair coin independent of the copy (random
codewords, drm/watermark.py), so that product bounds the chance that *anyone* innocent
among the candidates would be named (a union bound): the false-positive rate is chosen,
not measured after the fact. A copy names at most one session: the best; a second one
passing too would mean a collusion this simple code does not trace (docs/watermark.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

DECISION = 0.5
DEFAULT_TARGET_FPR = 1e-6
# A segment whose two references differ by less than this (summed squares over the cells,
# code values squared) carries no readable mark: a black or clipped white picture.
MIN_CONTRAST = 4.0


def soft_bits(
    capture: Sequence[Sequence[float]],
    a: Sequence[Sequence[float]],
    b: Sequence[Sequence[float]],
) -> list[float | None]:
    """Per segment of the capture: -1 at variant A, +1 at B, None when unreadable."""
    out: list[float | None] = []
    for seen, ref_a, ref_b in zip(capture, a, b, strict=False):
        diff = [y - x for x, y in zip(ref_a, ref_b, strict=True)]
        norm = sum(d * d for d in diff)
        if norm < MIN_CONTRAST:
            out.append(None)
            continue
        mid = [(x + y) / 2 for x, y in zip(ref_a, ref_b, strict=True)]
        projection = sum((s - m) * d for s, m, d in zip(seen, mid, diff, strict=True))
        out.append(2 * projection / norm)
    return out


def decided(soft: Sequence[float | None]) -> dict[int, int]:
    """Segment index -> bit, for the segments read with confidence."""
    return {i: int(v > 0) for i, v in enumerate(soft) if v is not None and abs(v) >= DECISION}


def match_distance(
    capture: Sequence[Sequence[float]],
    a: Sequence[Sequence[float]],
    b: Sequence[Sequence[float]],
) -> float:
    """How far the capture's picture is from the release's (mean absolute cell difference
    to the A/B midpoint): near the coding noise for a copy of this release, tens of code
    values for another film."""
    total, count = 0.0, 0
    for seen, ref_a, ref_b in zip(capture, a, b, strict=False):
        for s, x, y in zip(seen, ref_a, ref_b, strict=True):
            total += abs(s - (x + y) / 2)
            count += 1
    return total / count if count else math.inf


def tail(matches: int, n: int) -> float:
    """P(Binomial(n, 1/2) >= matches), exactly."""
    if matches <= 0:
        return 1.0
    if matches > n:
        return 0.0
    return float(sum(math.comb(n, k) for k in range(matches, n + 1)) / (1 << n))


def needed_matches(n: int, candidates: int, target_fpr: float) -> int | None:
    """The fewest agreements out of ``n`` decided bits that name a session among
    ``candidates`` at ``target_fpr``; None when even ``n`` of ``n`` would not."""
    for m in range(n // 2, n + 1):
        if candidates * tail(m, n) <= target_fpr:
            return m
    return None


@dataclass(frozen=True)
class Score:
    session_id: str
    matches: int
    decided: int
    false_positive_bound: float  # candidates x binomial tail: the chance this is a fluke


def score(
    bits: dict[int, int], codewords: Mapping[str, Sequence[int]], *, candidates: int | None = None
) -> list[Score]:
    """Every session's agreement with the decided bits, best first."""
    n = len(bits)
    count = candidates if candidates is not None else len(codewords)
    scores = []
    for session_id, word in codewords.items():
        matches = sum(1 for i, bit in bits.items() if i < len(word) and word[i] == bit)
        scores.append(Score(session_id, matches, n, min(1.0, count * tail(matches, n))))
    scores.sort(key=lambda s: (s.false_positive_bound, -s.matches))
    return scores
