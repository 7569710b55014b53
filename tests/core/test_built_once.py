"""Statements built once: the same object for every caller, even callers racing at start."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import bindparam, select
from sqlalchemy.engine import cursor

from core.db import built_once, unit_of_work
from tickets.models import PlaybackSession


def test_threads_racing_for_a_statement_all_get_the_one_built() -> None:
    builds: list[object] = []
    start = threading.Barrier(8)

    @built_once
    def statement(dialect: str) -> object:
        built = object()
        builds.append(built)
        time.sleep(0.05)  # a slow build: every racer arrives while it runs
        return built

    def ask(_: int) -> object:
        start.wait()
        return statement("postgresql")

    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(ask, range(8)))
    assert len(builds) == 1
    assert all(g is builds[0] for g in got)
    assert statement("sqlite") is not builds[0]  # one per argument
    assert len(builds) == 2


@pytest.mark.usefixtures("db")
def test_a_statement_built_once_is_never_adapted_after_a_racy_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The cost it removes: SQLAlchemy adapts a cached result to every *different* equal
    statement object it is given; with one object per statement it never has to."""
    adapted: list[int] = []
    original = cursor.CursorResultMetaData._adapt_to_context

    def counting(self, context):  # type: ignore[no-untyped-def]
        adapted.append(1)
        return original(self, context)

    monkeypatch.setattr(cursor.CursorResultMetaData, "_adapt_to_context", counting)
    marker = f"built-once-{time.monotonic_ns()}"  # a statement no other test compiled

    @built_once
    def statement() -> Any:
        time.sleep(0.05)
        return select(PlaybackSession.id, bindparam("marker")).where(
            PlaybackSession.id == bindparam("session_id")
        )

    start = threading.Barrier(4)

    def run(_: int) -> None:
        start.wait()
        with unit_of_work() as session:
            session.connection().execute(
                statement(), {"session_id": "none", "marker": marker}
            ).first()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(run, range(4)))
    for _ in range(5):  # the steady state: one caller at a time
        with unit_of_work() as session:
            session.connection().execute(
                statement(), {"session_id": "none", "marker": marker}
            ).first()
    assert adapted == []
