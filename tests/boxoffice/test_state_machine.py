"""A state machine mixing purchases, refunds, disputes, playback, late events and roll-ups:
after every step the report's totals equal the ledger's sums, and qualified views never
exceed tickets. Bounded (few examples, short runs) because CI runs the suite twice."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import func, select

from boxoffice import reports, service, views
from boxoffice.models import QualifiedView
from core.db import unit_of_work
from payments.models import LedgerEntry, LedgerKind
from tests.boxoffice.support import dispute, pay, pending_ticket, refund
from tests.conftest import empty_tables
from tests.helpers import create_licensed_title, create_studio, create_user
from tickets.models import Ticket

pytestmark = pytest.mark.usefixtures("db")

BASE = datetime(2026, 5, 1, 12, tzinfo=UTC)
FIRST, LAST = date(2026, 4, 29), date(2026, 5, 6)


class BoxOffice(RuleBasedStateMachine):
    @initialize()
    def setup(self) -> None:
        empty_tables()
        studio = create_studio()
        self.film = create_licensed_title(studio.id, slug="film")
        self.viewer = create_user("m@example.com")
        self.paid: list[Ticket] = []
        self.refundable: list[Ticket] = []
        self.sessions = 0
        self.seq = 0

    @rule(hours=st.integers(0, 96), country=st.sampled_from(["US", "CA"]))
    def purchase(self, hours: int, country: str) -> None:
        ticket = pending_ticket(self.viewer.id, self.film.id, country=country)
        pay(ticket, BASE + timedelta(hours=hours))
        self.paid.append(ticket)
        self.refundable.append(ticket)

    @precondition(lambda self: self.refundable)
    @rule(data=st.data(), hours=st.integers(0, 96), part=st.booleans())
    def refund(self, data: st.DataObject, hours: int, part: bool) -> None:
        ticket = data.draw(st.sampled_from(self.refundable))
        self.refundable.remove(ticket)
        refund(
            ticket,
            ticket.price_minor // 2 if part else ticket.price_minor,
            BASE + timedelta(hours=hours),
        )

    @precondition(lambda self: self.refundable)
    @rule(data=st.data(), hours=st.integers(0, 96), won=st.booleans())
    def dispute(self, data: st.DataObject, hours: int, won: bool) -> None:
        ticket = data.draw(st.sampled_from(self.refundable))
        self.refundable.remove(ticket)
        at = BASE + timedelta(hours=hours)
        dispute(ticket, at, reinstated_at=at + timedelta(hours=30) if won else None)

    @precondition(lambda self: self.paid)
    @rule(data=st.data(), hours=st.integers(-24, 96), beats=st.integers(1, 30))
    def watch(self, data: st.DataObject, hours: int, beats: int) -> None:
        """A playback session (possibly reported late: hours in the past) with heartbeats."""
        ticket = data.draw(st.sampled_from(self.paid))
        self.sessions += 1
        ps = f"ps-{self.sessions}"
        t0 = BASE + timedelta(hours=hours)
        with unit_of_work() as session:
            views.record_view_started(
                session,
                playback_session_id=ps,
                ticket_id=ticket.id,
                viewer_id=ticket.viewer_id,
                title_id=ticket.title_id,
                territory=ticket.territory,
                at=t0,
            )
            for seq in range(1, beats + 1):
                views.record_heartbeat(
                    session,
                    playback_session_id=ps,
                    ticket_id=ticket.id,
                    viewer_id=ticket.viewer_id,
                    title_id=ticket.title_id,
                    territory=ticket.territory,
                    seq=seq,
                    watched_seconds=30.0,
                    position_seconds=30.0 * seq,
                    at=t0 + timedelta(seconds=30 * seq),
                    runtime_seconds=1800.0,
                )

    @rule()
    def rollup_pending(self) -> None:
        with unit_of_work() as session:
            service.rollup_pending(session)

    @rule(day=st.dates(FIRST, LAST))
    def rollup_day_again(self, day: date) -> None:
        with unit_of_work() as session:
            service.rollup_day(session, day)

    @invariant()
    def report_equals_ledger(self) -> None:
        if not hasattr(self, "film"):
            return
        with unit_of_work() as session:
            service.rollup_pending(session)  # what the periodic job does before finance reads
            report = reports.build_report(session, reports.ReportQuery(FIRST, LAST, limit=1000))
            sums = {
                (currency, kind): int(total)
                for currency, kind, total in session.execute(
                    select(
                        LedgerEntry.currency, LedgerEntry.kind, func.sum(LedgerEntry.amount_minor)
                    ).group_by(LedgerEntry.currency, LedgerEntry.kind)
                )
            }
            sales = session.scalar(
                select(func.count())
                .select_from(LedgerEntry)
                .where(LedgerEntry.kind == LedgerKind.sale)
            )
            qualified = session.scalar(select(func.count()).select_from(QualifiedView))
        local = {m.currency: m for m in report.totals.local}
        for currency in {c for c, _ in sums}:
            money = local[currency]
            assert money.gross_minor == sums.get((currency, LedgerKind.sale), 0)
            assert money.refunds_minor == sums.get((currency, LedgerKind.refund), 0)
            assert money.net_sales_minor == sum(v for (c, _), v in sums.items() if c == currency)
        assert report.totals.tickets_sold == sales
        assert report.totals.qualified_views == qualified
        assert report.totals.qualified_views <= report.totals.tickets_sold


BoxOffice.TestCase.settings = settings(
    max_examples=6,
    stateful_step_count=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_box_office_state_machine = BoxOffice.TestCase
