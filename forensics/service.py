"""``pocketcinema watermark detect``: which session does a captured copy come from?

Reads the capture's frames at the release's rate, shrinks each to the 16x9 cells of the
watermark (transcoding/watermark.py), averages them per segment from the capture's first
frame (a capture through the playlists starts at segment 0), reads one bit per segment
against the release's stored A/B reference and decides among every session ever issued
for that release (forensics/detection.py). Without ``release_id`` every watermarked
release is tried and the one whose pictures the capture matches is used.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from catalog.models import Release
from core.errors import NotFound
from core.storage import get_store
from drm.watermark import carries_bit, codeword
from forensics import detection, repository
from transcoding.watermark import frame_cells, segment_features

# A capture farther than this from a release's pictures (mean absolute cell difference,
# code values) is not a copy of it: coding noise after a 1/3-rate re-encode stays below 3.
SAME_FILM = 12.0


@dataclass(frozen=True)
class Identification:
    release_id: str | None
    session_id: str | None  # None: no one is named
    ticket_id: str | None
    viewer_id: str | None
    confidence: float  # 1 - the false-positive bound of the named session (0 if none)
    false_positive_bound: float
    segments_read: int  # segments of the capture compared
    segments_decided: int
    matches: int
    candidates: int
    seconds: float  # wall time of the detection

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class Reference:
    release_id: str
    frame_rate: Fraction
    segment_seconds: float
    a: list[list[float]]
    b: list[list[float]]
    every: int = 1  # only every k-th segment carries a bit


def load_reference(release: Release) -> Reference:
    outputs: dict[str, Any] = release.outputs or {}
    key = str((outputs.get("watermark") or {}).get("reference") or "")
    if not key:
        raise NotFound("this release carries no watermark", code="not_watermarked")
    data = json.loads(get_store().get_bytes(key))
    return Reference(
        release_id=release.id,
        frame_rate=Fraction(str(data["frame_rate"])),
        segment_seconds=float(data["segment_seconds"]),
        a=data["a"],
        b=data["b"],
        every=int(data.get("every", 1)),
    )


def read_capture(path: Path, reference: Reference) -> list[list[float]]:
    frames = frame_cells(path, reference.frame_rate)
    return segment_features(frames, reference.frame_rate, reference.segment_seconds)


def identify(
    capture: list[list[float]],
    reference: Reference,
    candidates: list[repository.Candidate],
    *,
    target_fpr: float = detection.DEFAULT_TARGET_FPR,
    started: float | None = None,
) -> Identification:
    started = time.monotonic() if started is None else started
    soft = detection.soft_bits(capture, reference.a, reference.b)
    # Segments that carry no bit read as nothing (their references agree) but are left
    # out by index as well: the reference says which ones they are.
    bits = {i: b for i, b in detection.decided(soft).items() if carries_bit(i, reference.every)}
    length = min(len(capture), len(reference.a))
    words = {c.session_id: codeword(c.session_id, length) for c in candidates}
    scores = detection.score(bits, words)
    best = scores[0] if scores else None
    named = best is not None and bits and best.false_positive_bound <= target_fpr
    who = next((c for c in candidates if best and c.session_id == best.session_id), None)
    return Identification(
        release_id=reference.release_id,
        session_id=who.session_id if named and who else None,
        ticket_id=who.ticket_id if named and who else None,
        viewer_id=who.viewer_id if named and who else None,
        confidence=1.0 - best.false_positive_bound if named and best else 0.0,
        false_positive_bound=best.false_positive_bound if best else 1.0,
        segments_read=length,
        segments_decided=len(bits),
        matches=best.matches if best else 0,
        candidates=len(candidates),
        seconds=time.monotonic() - started,
    )


def detect(
    session: Session,
    path: Path,
    *,
    release_id: str | None = None,
    target_fpr: float = detection.DEFAULT_TARGET_FPR,
) -> Identification:
    """Name the session a captured copy comes from, or no one."""
    started = time.monotonic()
    releases = repository.watermarked_releases(session, release_id)
    if not releases:
        raise NotFound("no watermarked release to compare with", code="not_watermarked")
    best: tuple[float, Reference, list[list[float]]] | None = None
    for release in releases:
        reference = load_reference(release)
        capture = read_capture(path, reference)
        distance = detection.match_distance(capture, reference.a, reference.b)
        if best is None or distance < best[0]:
            best = (distance, reference, capture)
    if best is None:  # pragma: no cover - releases is not empty
        raise NotFound("no watermarked release to compare with", code="not_watermarked")
    distance, reference, capture = best
    if distance > SAME_FILM:
        return Identification(
            None, None, None, None, 0.0, 1.0, len(capture), 0, 0, 0, time.monotonic() - started
        )
    candidates = repository.sessions_of(session, reference.release_id)
    return identify(capture, reference, candidates, target_fpr=target_fpr, started=started)
