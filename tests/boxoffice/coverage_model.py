"""A deliberately naive reference model of covered content: the film as a set of whole
seconds, a ticket's history replayed event by event; and the histories that try to farm it
(restart storms, parallel sessions, forged and repeated positions, skewed clocks)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

BASE = datetime(2030, 1, 1, tzinfo=UTC)
SESSIONS = ["s1", "s2", "s3", "s4"]


def second(n: int) -> datetime:
    return BASE + timedelta(seconds=n)


@dataclass(frozen=True)
class Start:
    """A view start (first key delivery) of a session at second ``t``."""

    session: str
    t: int


@dataclass(frozen=True)
class Heartbeat:
    session: str
    seq: int
    t: int
    position: int
    watched: int
    outside: bool = False


Event = Start | Heartbeat


def runs(seconds: set[int]) -> list[tuple[int, int]]:
    """The set as maximal [start, end) runs of consecutive seconds."""
    out: list[tuple[int, int]] = []
    for s in sorted(seconds):
        if out and out[-1][1] == s:
            out[-1] = (out[-1][0], s + 1)
        else:
            out.append((s, s + 1))
    return out


@dataclass
class Model:
    """One ticket, replayed naively: which seconds of the film are covered, and when."""

    runtime: int
    max_credit: int
    max_pieces: int = 10_000
    covered: set[int] = field(default_factory=set)
    starts: dict[str, int] = field(default_factory=dict)
    last_beat: dict[str, int] = field(default_factory=dict)
    seen: set[tuple[str, int]] = field(default_factory=set)
    latest: int | None = None

    def start(self, event: Start) -> None:
        self.starts.setdefault(event.session, event.t)  # one view start per session

    def beat(self, event: Heartbeat) -> bool:
        if (event.session, event.seq) in self.seen:
            return False  # a redelivery changes nothing
        self.seen.add((event.session, event.seq))
        since = [
            t
            for t in (self.starts.get(event.session), self.last_beat.get(event.session))
            if t is not None
        ]
        self.last_beat[event.session] = max(event.t, self.last_beat.get(event.session, event.t))
        self.latest = event.t if self.latest is None else max(self.latest, event.t)
        if event.outside or not since or not self.starts:
            return True
        wall = self.latest - min(self.starts.values())
        length = max(0, min(event.watched, self.max_credit, event.t - max(since)))
        room = wall - len(self.covered)
        added: set[int] = set()
        for s in range(max(event.position - length, 0), min(event.position, self.runtime)):
            if len(added) >= room:
                break
            if s not in self.covered:
                added.add(s)
        grown = self.covered | added
        if len(runs(grown)) <= max(self.max_pieces, len(runs(self.covered))):
            self.covered = grown
        return True

    def wall(self) -> int:
        if self.latest is None or not self.starts:
            return 0
        return max(self.latest - min(self.starts.values()), 0)


# --- histories: restart storms, parallel sessions, forged and repeated positions, skew -------


@st.composite
def histories(draw: st.DrawFn, runtime: int) -> list[Event]:
    events: list[Event] = []
    clock = 0
    seqs = dict.fromkeys(SESSIONS, 0)
    for _ in range(draw(st.integers(1, 40))):
        clock += draw(st.sampled_from([0, 0, 1, 2, 5, 10, 30]))  # bursts and real pauses
        skew = draw(st.sampled_from([0, 0, 0, -7, 4, -60]))  # another server's clock
        session = draw(st.sampled_from(SESSIONS))
        if draw(st.integers(0, 5)) == 0:
            events.append(Start(session, clock + skew))
            continue
        if draw(st.booleans()):
            seqs[session] += 1  # otherwise a redelivery of the previous seq
        events.append(
            Heartbeat(
                session=session,
                seq=seqs[session],
                t=clock + skew,
                position=draw(
                    st.one_of(
                        st.integers(0, runtime + 30),  # anywhere, past the end too
                        st.just(clock),  # playing along
                        st.sampled_from([0, 10, 20]),  # the same minutes again
                    )
                ),
                watched=draw(st.sampled_from([0, 1, 3, 10, 30, 300, 100_000, -5])),
                outside=draw(st.integers(0, 9)) == 0,
            )
        )
    return events
