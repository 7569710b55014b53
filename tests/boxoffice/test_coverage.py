"""Covered content, the rule on plain values (boxoffice/coverage.py), against a deliberately
naive reference model: content as a set of whole seconds, a ticket's history replayed event
by event. The same model holds the database path to the same answer (test_views.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from boxoffice.coverage import Beat, Coverage, credit_heartbeat, cut_for_room, union
from tests.boxoffice.coverage_model import Event, Heartbeat, Model, Start, histories, runs, second

# --- the rule, replayed the way boxoffice.views applies it ----------------------------------


@dataclass
class Replay:
    """What record_heartbeat keeps between heartbeats, without the database."""

    runtime: int
    max_credit: int
    max_pieces: int = 10_000
    coverage: Coverage = field(default_factory=Coverage)
    starts: dict[str, datetime] = field(default_factory=dict)
    last_beat: dict[str, datetime] = field(default_factory=dict)
    seen: set[tuple[str, int]] = field(default_factory=set)

    def start(self, event: Start) -> None:
        self.starts.setdefault(event.session, second(event.t))

    def beat(self, event: Heartbeat) -> None:
        if (event.session, event.seq) in self.seen:
            return
        self.seen.add((event.session, event.seq))
        at = second(event.t)
        since = [
            t
            for t in (self.starts.get(event.session), self.last_beat.get(event.session))
            if t is not None
        ]
        before = Coverage(
            self.coverage.intervals,
            min(self.starts.values()) if self.starts else None,
            self.coverage.latest_at,
        )
        credit = credit_heartbeat(
            before,
            Beat(
                at=at,
                position_seconds=float(event.position),
                watched_seconds=float(event.watched),
                session_since=max(since) if since else None,
                outside_territory=event.outside,
            ),
            runtime_ms=self.runtime * 1000,
            max_credit_ms=self.max_credit * 1000,
            max_pieces=self.max_pieces,
        )
        self.last_beat[event.session] = max(at, self.last_beat.get(event.session, at))
        self.coverage = credit.coverage
        if credit.interval is not None:
            # The credited range is one piece of content inside the film, within the claim.
            a, b = credit.interval
            assert 0 <= a < b <= min(event.position, self.runtime) * 1000


@st.composite
def cases(draw: st.DrawFn) -> tuple[int, int, int, list[Event]]:
    runtime = draw(st.sampled_from([45, 120, 600]))
    max_credit = draw(st.sampled_from([20, 300]))
    max_pieces = draw(st.sampled_from([2, 10_000]))
    return runtime, max_credit, max_pieces, draw(histories(runtime))


@given(case=cases())
@settings(max_examples=800, deadline=None)
def test_the_rule_agrees_with_the_reference_model(case: tuple[int, int, int, list[Event]]) -> None:
    runtime, max_credit, max_pieces, events = case
    model = Model(runtime, max_credit, max_pieces)
    replay = Replay(runtime, max_credit, max_pieces)
    for event in events:
        if isinstance(event, Start):
            model.start(event)
            replay.start(event)
        else:
            model.beat(event)
            replay.beat(event)
        expected = [(a * 1000, b * 1000) for a, b in runs(model.covered)]
        assert list(replay.coverage.intervals) == expected
        # What the issue asks for, checked after every event: never more than the wall time
        # since the ticket's first view start, never more than the runtime.
        assert replay.coverage.covered_ms <= model.wall() * 1000
        assert replay.coverage.covered_ms <= runtime * 1000


def test_forty_restarts_in_two_seconds_cover_at_most_two_seconds() -> None:
    """The issue's farm: 40 restarts of a session, one heartbeat each claiming 5 minutes."""
    replay = Replay(runtime=7200, max_credit=300)
    for n in range(40):
        t = n // 20  # 20 restarts a second
        replay.start(Start(f"r{n}", t))
        replay.beat(Heartbeat(f"r{n}", 1, t + 1, position=300 * (n + 1), watched=300))
    assert replay.coverage.covered_ms <= 2000


def test_a_45_second_film_needs_its_threshold_share_actually_played() -> None:
    replay = Replay(runtime=45, max_credit=300)
    replay.start(Start("s1", 0))
    replay.beat(Heartbeat("s1", 1, 1, position=45, watched=45))  # "I watched it all"
    assert replay.coverage.covered_ms == 1000  # one second has passed
    for seq in range(2, 13):  # then plays from the start, one heartbeat a second
        replay.beat(Heartbeat("s1", seq, seq, position=seq - 1, watched=45))
    assert replay.coverage.intervals == ((0, 11_000), (44_000, 45_000))


def test_a_heartbeat_covers_the_range_played_up_to_the_playhead() -> None:
    replay = Replay(runtime=7200, max_credit=300)
    replay.start(Start("s1", 0))
    replay.beat(Heartbeat("s1", 1, 30, position=630, watched=30))  # seeked to 10:00 first
    replay.beat(Heartbeat("s1", 2, 60, position=660, watched=30))
    assert replay.coverage.intervals == ((600_000, 660_000),)


def test_heartbeats_from_outside_the_territory_cover_nothing() -> None:
    replay = Replay(runtime=7200, max_credit=300)
    replay.start(Start("s1", 0))
    for seq in range(1, 30):
        replay.beat(Heartbeat("s1", seq, 30 * seq, position=30 * seq, watched=30, outside=True))
    assert replay.coverage.covered_ms == 0
    # Back home, the session's pace restarts from its last heartbeat abroad.
    replay.beat(Heartbeat("s1", 30, 900, position=900, watched=30))
    assert replay.coverage.intervals == ((870_000, 900_000),)


@given(
    pieces=st.lists(st.tuples(st.integers(0, 200), st.integers(1, 30)), max_size=8),
    candidate=st.tuples(st.integers(0, 200), st.integers(1, 80)),
    room=st.integers(0, 100),
)
def test_a_cut_adds_exactly_the_room_or_the_whole_range(
    pieces: list[tuple[int, int]], candidate: tuple[int, int], room: int
) -> None:
    normalized: list[tuple[int, int]] = []
    for start, length in pieces:
        normalized = union(normalized, (start, start + length))
    seconds = {s for a, b in normalized for s in range(a, b)}
    start, end = candidate[0], candidate[0] + candidate[1]
    cut = cut_for_room(normalized, (start, end), room)
    new = set(range(cut[0], cut[1])) - seconds
    assert cut[0] == start
    assert cut[1] <= end
    assert len(new) == min(room, len(set(range(start, end)) - seconds))
