"""The roll-up equals the raw GROUP BY over the facts, on random data, on SQLite and on
PostgreSQL; and re-running it -- a retry, a second delivery, a crash before commit -- never
counts anything twice nor drops anything."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

import boxoffice.tasks  # noqa: F401 - registers the roll-up jobs run below
from boxoffice import reports, repository, service
from boxoffice.definitions import day_bounds, territory_zone
from boxoffice.models import QualifiedView, ViewStart
from core import jobs, outbox
from core.db import unit_of_work
from core.scope import ALL_STUDIOS
from payments.models import LedgerEntry, LedgerKind
from tests.helpers import create_studio, create_title, create_user
from tickets.models import Ticket, TicketState

pytestmark = pytest.mark.usefixtures("db")

# From a Friday over ten days: weekends, a whole ISO week (9-15 March, read from the weekly
# sums when a report does not group by day) and a DST change in the US.
FIRST = date(2026, 3, 6)
DAYS = 9
# Territories in zones far apart (a fact near midnight UTC is on different local days), a
# territory with no zone of its own (the default, UTC), and two providers.
TERRITORIES = {"US": "USD", "JP": "JPY", "ZZ": "EUR"}
PROVIDERS = ("stripe", "sandbox")
MONEY = ("tickets_sold", *(c for c in repository.TOTALS_COLUMNS if c.endswith("_minor")))
VIEWS = ("views_started", "unique_viewers", "qualified_views")


def random_facts(seed: int, n: int = 80) -> None:
    """Tickets with sales, refunds, chargebacks and reversals in several currencies (fees
    sometimes in another currency), view starts and qualified views, at random times."""
    rng = random.Random(seed)
    studio = create_studio(f"Studio {seed}")
    titles = [create_title(studio.id, slug=f"t{i}-{seed}", title=f"T{i}").id for i in range(3)]
    viewers = [create_user(f"v{i}-{seed}@example.com").id for i in range(6)]
    start = datetime.combine(FIRST, datetime.min.time(), tzinfo=UTC) - timedelta(hours=12)

    def when() -> datetime:
        return start + timedelta(seconds=rng.randrange(int((DAYS + 1) * 86400)))

    with unit_of_work() as session:
        for i in range(n):
            territory = rng.choice(list(TERRITORIES))
            currency = TERRITORIES[territory]
            provider = rng.choice(PROVIDERS)
            title_id, viewer_id = rng.choice(titles), rng.choice(viewers)
            paid = when()
            ticket = Ticket(
                id=uuid.uuid4().hex,
                viewer_id=viewer_id,
                title_id=title_id,
                idempotency_key=uuid.uuid4().hex,
                request_fingerprint="f",
                territory=territory,
                price_minor=rng.choice((999, 1299, 1500)),
                currency=currency,
                licence_window_id="w",
                state=TicketState.active,
                provider=provider,
                payment_intent_id=f"pi_{seed}_{i}",
                start_within_hours=720,
                watch_hours=48,
                paid_at=paid,
            )
            session.add(ticket)
            session.flush()

            def entry(kind: LedgerKind, amount: int, at: datetime, ticket: Ticket = ticket) -> None:
                fee_currency = rng.choice((ticket.currency, ticket.currency, "EUR", None))
                session.add(
                    LedgerEntry(
                        ticket_id=ticket.id,
                        title_id=ticket.title_id,
                        territory=ticket.territory,
                        currency=ticket.currency,
                        amount_minor=amount,
                        kind=kind,
                        provider_fee_minor=rng.randrange(20, 90) if fee_currency else None,
                        provider_fee_currency=fee_currency,
                        provider=ticket.provider,
                        provider_reference=f"{kind}_{ticket.id}",
                        occurred_at=at,
                    )
                )

            entry(LedgerKind.sale, ticket.price_minor, paid)
            roll = rng.random()
            if roll < 0.15:
                entry(LedgerKind.refund, -rng.choice((ticket.price_minor, 500)), when())
            elif roll < 0.25:
                entry(LedgerKind.chargeback, -ticket.price_minor, when())
                if rng.random() < 0.5:
                    entry(LedgerKind.chargeback_reversal, ticket.price_minor, when())
            for s in range(rng.randrange(3)):
                session.add(
                    ViewStart(
                        playback_session_id=f"ps-{ticket.id}-{s}",
                        ticket_id=ticket.id,
                        viewer_id=viewer_id,
                        title_id=title_id,
                        territory=territory,
                        started_at=when(),
                    )
                )
            if rng.random() < 0.5:
                session.add(
                    QualifiedView(
                        ticket_id=ticket.id,
                        viewer_id=viewer_id,
                        title_id=title_id,
                        territory=territory,
                        playback_session_id=f"ps-{ticket.id}-0",
                        qualified_at=when(),
                        watched_seconds=600,
                        threshold_seconds=600,
                    )
                )


def all_days() -> list[date]:
    return [FIRST - timedelta(days=1) + timedelta(days=i) for i in range(DAYS + 2)]


def raw_by_day() -> dict[tuple[Any, ...], int]:
    """The raw GROUP BY, one local day and territory at a time (that territory's own day
    bounds), keyed like the roll-up rows; zeros left out."""
    out: dict[tuple[Any, ...], int] = defaultdict(int)
    with unit_of_work() as session:
        for day in all_days():
            for territory in TERRITORIES:
                start, end = day_bounds(day, territory_zone(territory))
                for r in repository.raw_totals(session, start, end):
                    if r.territory != territory:
                        continue
                    fields = r._mapping
                    if "views_started" in fields or "qualified_views" in fields:
                        key: tuple[Any, ...] = (day, r.title, territory, "", "")
                    else:
                        key = (day, r.title, territory, r.provider, r.currency)
                    for name, value in fields.items():
                        if name in MONEY or name in VIEWS:
                            out[(*key, name)] += int(value or 0)
    return {k: v for k, v in out.items() if v}


def raw_over_range() -> dict[tuple[Any, ...], int]:
    """The raw GROUP BY over the whole range, each territory within its own local days;
    distinct viewers left out (over a range they are not the sum of daily figures)."""
    out: dict[tuple[Any, ...], int] = defaultdict(int)
    with unit_of_work() as session:
        for territory in TERRITORIES:
            zone = territory_zone(territory)
            start, end = day_bounds(all_days()[0], zone)[0], day_bounds(all_days()[-1], zone)[1]
            for r in repository.raw_totals(session, start, end):
                if r.territory != territory:
                    continue
                fields = r._mapping
                views = "views_started" in fields or "qualified_views" in fields
                key = (
                    (r.title, territory, "", "")
                    if views
                    else (r.title, territory, r.provider, r.currency)
                )
                for name, value in fields.items():
                    if name in MONEY or name in ("views_started", "qualified_views"):
                        out[(*key, name)] += int(value or 0)
    return {k: v for k, v in out.items() if v}


def without_viewers(figures: dict[tuple[Any, ...], int]) -> dict[tuple[Any, ...], int]:
    return {k: v for k, v in figures.items() if k[-1] != "unique_viewers"}


def rolled_by_day() -> dict[tuple[Any, ...], int]:
    out: dict[tuple[Any, ...], int] = {}
    where = repository.RollupFilter(all_days()[0], all_days()[-1], ALL_STUDIOS)
    with unit_of_work() as session:
        rows = repository.totals_by(
            session, ["day", "title", "territory", "provider", "currency"], where
        )
        for r in rows:
            for name in (*MONEY, *VIEWS):
                if getattr(r, name):
                    key = (r.day, r.title, r.territory, r.provider, r.currency, name)
                    out[key] = int(getattr(r, name))
    return out


def by_range(by_day: dict[tuple[Any, ...], int]) -> dict[tuple[Any, ...], int]:
    """Daily figures summed over the whole range (the key without its day)."""
    out: dict[tuple[Any, ...], int] = defaultdict(int)
    for (_, *key), value in by_day.items():
        out[tuple(key)] += value
    return dict(out)


def rolled_over_range() -> dict[tuple[Any, ...], int]:
    """The roll-up over the whole range without the day dimension: whole weeks come from
    the weekly sums, the days around them from the daily rows."""
    where = repository.RollupFilter(all_days()[0], all_days()[-1], ALL_STUDIOS)
    assert repository.whole_weeks(where.date_from, where.date_to) is not None
    out: dict[tuple[Any, ...], int] = {}
    with unit_of_work() as session:
        rows = repository.totals_by(session, ["title", "territory", "provider", "currency"], where)
        for r in rows:
            for name in (*MONEY, *VIEWS):
                if getattr(r, name):
                    out[(r.title, r.territory, r.provider, r.currency, name)] = int(
                        getattr(r, name)
                    )
    return out


def roll_all() -> None:
    with unit_of_work() as session:
        service.rollup_days(session, all_days())


def roll_then_die(days: list[date]) -> None:
    with unit_of_work() as session:
        for day in days:
            service.rollup_day(session, day)
        raise RuntimeError("the worker died before committing")


@pytest.mark.parametrize("seed", [1, 2])
def test_the_rollup_equals_the_raw_group_by_on_random_facts(seed: int) -> None:
    random_facts(seed)
    roll_all()
    expected = raw_by_day()
    assert expected, "the random facts produced nothing to compare"
    assert rolled_by_day() == expected
    assert rolled_over_range() == by_range(expected)
    # The report, read from roll-up rows only, gives the raw sums per territory and title.
    for territory in TERRITORIES:
        zone = territory_zone(territory)
        start, end = day_bounds(all_days()[0], zone)[0], day_bounds(all_days()[-1], zone)[1]
        raw: dict[tuple[str, str], int] = defaultdict(int)
        with unit_of_work() as session:
            for r in repository.raw_totals(session, start, end):
                if r.territory == territory:
                    for name, value in r._mapping.items():
                        if name in MONEY or name in ("views_started", "qualified_views"):
                            raw[(r.title, name)] += int(value or 0)
            got = reports.build_report(
                session,
                reports.ReportQuery(
                    date_from=all_days()[0],
                    date_to=all_days()[-1],
                    group_by=reports.GroupBy.title,
                    territories=(territory,),
                    limit=1000,
                ),
            )
        for row in got.rows:
            assert row.tickets_sold == raw[(row.key, "tickets_sold")]
            assert row.views_started == raw[(row.key, "views_started")]
            assert row.qualified_views == raw[(row.key, "qualified_views")]
            gross = sum(m.gross_minor for m in row.local if m.currency == TERRITORIES[territory])
            assert gross == raw[(row.key, "gross_minor")]
            fees = sum(m.fees_minor for m in row.local)
            assert fees == raw[(row.key, "fees_minor")]


def test_retries_redeliveries_and_crashes_never_count_twice() -> None:
    random_facts(3, n=40)
    roll_all()
    expected = raw_over_range()
    assert without_viewers(by_range(rolled_by_day())) == expected
    with unit_of_work() as session:  # the periodic job rolls the same days again: no change
        service.rollup_pending(session)
    assert without_viewers(rolled_over_range()) == expected
    # One job delivered twice: the second delivery finds it finished and does nothing.
    outbox.set_publish_after_commit(False)
    try:
        with unit_of_work() as session:
            job = outbox.enqueue(
                session, "boxoffice.rollup.range", first="2026-03-09", last="2026-03-10"
            )
            job_id, args = job.id, dict(job.args)
        first = jobs.run_job("boxoffice.rollup.range", job_id, args)
        second = jobs.run_job("boxoffice.rollup.range", job_id, args)
    finally:
        outbox.set_publish_after_commit(True)
    assert (first[0], second[0]) == ("done", "skipped")
    assert without_viewers(rolled_over_range()) == expected
    # A roll-up that dies before its commit leaves the previous rows whole.
    random_facts(4, n=10)
    with pytest.raises(RuntimeError, match="died"):
        roll_then_die(all_days()[3:6])
    assert without_viewers(rolled_over_range()) == expected
    # The periodic job picks the new facts up, days and weeks alike.
    with unit_of_work() as session:
        service.rollup_pending(session)
    now_expected = raw_over_range()
    assert now_expected != expected
    assert without_viewers(by_range(rolled_by_day())) == now_expected
    assert without_viewers(rolled_over_range()) == now_expected
