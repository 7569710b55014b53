"""Heartbeats decided together (group commit) keep every rule of a heartbeat decided alone:
each seq counts exactly once, also when a retry lands in the same group or when the group
has to run again one by one because one of its requests failed; a refused heartbeat's
session end is committed with the group; a connection the server dropped is replaced
without a ping and the transaction runs once more."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from api.deps import GroupCommit
from boxoffice import views
from boxoffice.models import ViewHeartbeat
from core.db import get_engine, transact_together, unit_of_work, utcnow
from playback import service as playback
from playback.service import Beat, Refused
from tests.conftest import PG_ADMIN_URL, Configure
from tests.helpers import auth_header
from tests.playback.conftest import Viewing
from tickets.models import PlaybackSession


def _heartbeat(
    sid: str, grant: str, seq: int, *, device: str = "phone-1", country: str = "US"
) -> Callable[[Session], Beat | Refused]:
    at = utcnow()

    def work(session: Session) -> Beat | Refused:
        return playback.heartbeat(
            session,
            grant,
            sid,
            device_id=device,
            country=country,
            seq=seq,
            position_seconds=2.0 * seq,
            watched_seconds=2.0,
            at=at,
        )

    return work


def _stored_seqs(sid: str) -> list[int]:
    with unit_of_work() as session:
        rows = session.scalars(
            select(ViewHeartbeat.seq)
            .where(ViewHeartbeat.playback_session_id == sid)
            .order_by(ViewHeartbeat.seq)
        )
        return list(rows)


@pytest.mark.parametrize("with_a_failure", [False, True], ids=["clean", "one-fails"])
def test_a_group_counts_each_seq_once_even_with_a_retry_inside_it(
    viewing: Viewing, with_a_failure: bool
) -> None:
    started = viewing.start().json()
    sid, grant = started["session_id"], started["token"]
    works = [_heartbeat(sid, grant, 1), _heartbeat(sid, grant, 1), _heartbeat(sid, grant, 2)]
    if with_a_failure:
        # A request that fails inside the group (here: a grant that is not ours) rolls the
        # whole group back; every request then runs alone in its own transaction.
        works.insert(1, _heartbeat(sid, grant[:-2] + "xx", 3))

    outcomes = transact_together(works)

    answers = [value for ok, value in outcomes if ok]
    assert [a.recorded for a in answers if isinstance(a, Beat)] == [True, False, True]
    if with_a_failure:
        ok, error = outcomes[1]
        assert not ok
        assert getattr(error, "code", None) == "invalid_grant"
    assert _stored_seqs(sid) == [1, 2]
    with unit_of_work() as session:
        # What the ticket's accumulator says equals what its heartbeat rows add up to.
        assert views.covered_from_facts(session, viewing.ticket_id) == round(
            views.watched_seconds(session, viewing.ticket_id) * 1000
        )
        assert views.covered_from_facts(session, viewing.ticket_id) > 0


def test_a_refused_heartbeat_ends_its_session_and_the_group_commits_it(
    viewing: Viewing, configure: Configure
) -> None:
    configure(playback_streams_per_ticket="2")
    phone = viewing.start().json()
    tablet = viewing.start(headers=auth_header(viewing.viewer, device_id="tablet-1")).json()

    outcomes = transact_together(
        [
            _heartbeat(phone["session_id"], phone["token"], 1, country="DE"),  # refused
            _heartbeat(tablet["session_id"], tablet["token"], 1, device="tablet-1"),
        ]
    )

    (ok_phone, refused), (ok_tablet, beat) = outcomes
    assert ok_phone
    assert isinstance(refused, Refused)
    assert refused.error.code == "country_changed"
    assert ok_tablet
    assert isinstance(beat, Beat)
    assert beat.recorded
    with unit_of_work() as session:
        ended = session.get_one(PlaybackSession, phone["session_id"])
        assert ended.ended_at is not None
        assert ended.end_reason == "country_changed"
        assert session.get_one(PlaybackSession, tablet["session_id"]).ended_at is None
    assert _stored_seqs(phone["session_id"]) == []  # a refused heartbeat counts nothing
    assert _stored_seqs(tablet["session_id"]) == [1]


def test_requests_arriving_together_or_while_a_group_is_decided_go_together(
    db: None, configure: Configure
) -> None:
    configure(playback_heartbeat_batches_in_flight="1")
    groups = GroupCommit()

    def work(session: Session) -> str:
        session.execute(select(1))
        marker: str = session.info.setdefault("transaction", uuid.uuid4().hex)
        time.sleep(0.05)  # long enough for the later arrivals to queue behind it
        return marker

    async def scenario() -> tuple[list[str], list[str]]:
        # Three in the same turn of the event loop (bytes read together), then two more
        # in a later turn while those three are being decided.
        together = asyncio.gather(*(groups.run(work) for _ in range(3)))
        await asyncio.sleep(0.01)
        later = asyncio.gather(*(groups.run(work) for _ in range(2)))
        return list(await together), list(await later)

    together, later = asyncio.run(scenario())
    assert len(set(together)) == 1  # one group, one transaction
    assert len(set(later)) == 1  # waited for the first group and went as one
    assert together[0] != later[0]


@pytest.mark.postgres
def test_a_connection_the_server_dropped_is_replaced_and_the_heartbeat_counts_once(
    viewing: Viewing,
) -> None:
    started = viewing.start().json()
    sid, grant = started["session_id"], started["token"]
    first = viewing.client.post(
        f"/v1/playback/sessions/{sid}/heartbeat",
        json={"seq": 1, "position_seconds": 2.0, "watched_seconds": 2.0},
        headers=viewing.grant_headers(grant),
    )
    assert first.status_code == 200
    dropped: list[bool] = []

    def seen(context: Any) -> None:
        dropped.append(bool(context.is_disconnect))

    engine = get_engine()
    event.listen(engine, "handle_error", seen)
    try:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            # What a server restart or an idle timeout does to the pooled connections.
            database = engine.url.database
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (database,),
            )
        second = viewing.client.post(
            f"/v1/playback/sessions/{sid}/heartbeat",
            json={"seq": 2, "position_seconds": 4.0, "watched_seconds": 2.0},
            headers=viewing.grant_headers(first.json()["token"]),
        )
    finally:
        event.remove(engine, "handle_error", seen)
    assert second.status_code == 200, second.text
    assert second.json()["recorded"] is True
    assert True in dropped  # the pooled connection was dead, and no ping had found out
    assert _stored_seqs(sid) == [1, 2]
    with unit_of_work() as session:
        count = session.scalar(select(func.count()).where(ViewHeartbeat.playback_session_id == sid))
        assert count == 2


def test_each_work_runs_in_its_own_requests_context(db: None) -> None:
    """Decision threads see the request's context variables (its request id in the logs),
    each work its own, also when they share a group."""
    from core.logs import request_id_var

    groups = GroupCommit()

    def work(session: Session) -> str | None:
        session.execute(select(1))
        return request_id_var.get()

    async def ask(request_id: str) -> str | None:
        request_id_var.set(request_id)
        return await groups.run(work)

    async def together() -> list[str | None]:
        return list(await asyncio.gather(ask("req-1"), ask("req-2"), ask("req-3")))

    assert asyncio.run(together()) == ["req-1", "req-2", "req-3"]
