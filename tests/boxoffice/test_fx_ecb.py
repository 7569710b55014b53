"""The ECB fetch against a loopback server that speaks the ECB's XML (daily and 90-day
files), its failures (HTTP 500, malformed XML, a DTD) made loud, and the weekend carry-over
as reports show it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from api import metrics as business_metrics
from boxoffice import ecb, reports, service
from boxoffice.fx import RateUsed, carry_over
from core.db import unit_of_work
from core.outbox import OutboxJob
from tests.boxoffice.support import pay, pending_ticket
from tests.conftest import Configure
from tests.helpers import create_licensed_title, create_studio, create_user

pytestmark = pytest.mark.usefixtures("db")

FRIDAY, SATURDAY, SUNDAY = date(2026, 3, 6), date(2026, 3, 7), date(2026, 3, 8)


def ecb_xml(days: dict[date, dict[str, str]]) -> bytes:
    """The ECB's eurofxref format, as eurofxref-daily.xml and eurofxref-hist-90d.xml."""
    cubes = "".join(
        f"<Cube time='{day}'>"
        + "".join(f"<Cube currency='{c}' rate='{r}'/>" for c, r in rates.items())
        + "</Cube>"
        for day, rates in sorted(days.items(), reverse=True)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01" '
        'xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">'
        "<gesmes:subject>Reference rates</gesmes:subject>"
        "<gesmes:Sender><gesmes:name>European Central Bank</gesmes:name></gesmes:Sender>"
        f"<Cube>{cubes}</Cube></gesmes:Envelope>"
    ).encode()


RATES = {
    date(2026, 3, 4): {"USD": "1.0800", "CAD": "1.4800", "CNY": "7.6000"},
    date(2026, 3, 5): {"USD": "1.0900", "CAD": "1.4900", "CNY": "7.6500"},
    FRIDAY: {"USD": "1.1000", "CAD": "1.5000", "CNY": "7.7000"},
}


class Feed:
    """What the loopback server answers, per path: (status, body); and what it was asked."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[int, bytes]] = {}
        self.asked: list[str] = []


@pytest.fixture
def feed(configure: Configure) -> Iterator[Feed]:
    state = Feed()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.asked.append(self.path)
            status, body = state.answers.get(self.path, (404, b"not found"))
            self.send_response(status)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    configure(
        fx_fetch_enabled="true",
        fx_ecb_daily_url=f"{base}/daily.xml",
        fx_ecb_history_url=f"{base}/hist-90d.xml",
        # The ECB's host is public; this loopback stand-in must be allowed explicitly.
        outbound_allowed_networks="127.0.0.0/8",
    )
    yield state
    server.shutdown()
    server.server_close()


def fetch() -> ecb.FetchResult:
    with unit_of_work() as session:
        return service.fetch_ecb_rates(session)


def reroll_jobs() -> int:
    with unit_of_work() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(OutboxJob)
                .where(OutboxJob.task == "boxoffice.rollup.range")
            )
            or 0
        )


def fx_gauges(client: TestClient) -> dict[str, float]:
    business_metrics.BUSINESS.forget()
    text = client.get("/metrics").text
    return {
        s.name: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("pocketcinema_fx_")
    }


def test_the_first_fetch_fills_90_days_and_a_weekend_uses_fridays_rate(feed: Feed) -> None:
    feed.answers["/daily.xml"] = (200, ecb_xml({FRIDAY: RATES[FRIDAY]}))
    feed.answers["/hist-90d.xml"] = (200, ecb_xml(RATES))
    first = fetch()
    assert (first.ok, first.latest_day, first.backfilled) == (True, FRIDAY, True)
    assert feed.asked == ["/daily.xml", "/hist-90d.xml"]
    with unit_of_work() as session:
        assert service.rates_on(session, date(2026, 3, 4))["USD"] == "1.0800"
        # The carry-over rule: the weekend and the days after use Friday's rate, with its
        # date, up to fx_carry_days (4) days; past that there is no rate.
        assert service.rate_on(session, "USD", SATURDAY) == (Decimal("1.1000"), FRIDAY)
        assert service.rate_on(session, "cad", SUNDAY) == (Decimal("1.5000"), FRIDAY)
        assert service.rate_on(session, "USD", date(2026, 3, 10)) == (Decimal("1.1"), FRIDAY)
        assert service.rate_on(session, "USD", date(2026, 3, 11)) is None
        assert service.rate_on(session, "EUR", SUNDAY) == (Decimal(1), SUNDAY)
    jobs_before = reroll_jobs()
    assert jobs_before == 1
    # The same file again: nothing changes, nothing is re-rolled, no second 90-day download.
    again = fetch()
    assert (again.ok, again.backfilled) == (True, False)
    assert feed.asked[2:] == ["/daily.xml"]
    assert reroll_jobs() == jobs_before

    # A Saturday sale in Canada is converted with Friday's rates, and the report says so.
    studio = create_studio()
    film = create_licensed_title(studio.id, slug="maple", prices={"CA": (1500, "CAD")})
    viewer = create_user("weekend@example.com")
    pay(
        pending_ticket(viewer.id, film.id, country="CA"),
        datetime(2026, 3, 7, 12, tzinfo=ZoneInfo("America/Toronto")),
    )
    with unit_of_work() as session:
        service.rollup_day(session, SATURDAY)
        got = reports.build_report(session, reports.ReportQuery(SATURDAY, SATURDAY))
    [row] = got.rows
    # 1500 CAD / 1.50 x 1.10 = 1100 USD cents, with Friday's rates.
    assert row.converted["USD"].gross_minor == 1100
    assert {"day": "2026-03-07", "currency": "CAD", "rate_date": "2026-03-06"} in (
        got.carried_rates
    )
    assert {"day": "2026-03-07", "currency": "USD", "rate_date": "2026-03-06"} in (
        got.carried_rates
    )
    assert got.missing_rates == []
    assert got.fx_warnings == []


@pytest.mark.embedded_only  # plain values: no database
def test_the_carry_over_rule_on_plain_values() -> None:
    published = {FRIDAY: {"USD": Decimal("1.1")}, date(2026, 3, 9): {"USD": Decimal("1.2")}}
    assert carry_over(published, SUNDAY, "USD", 4) == RateUsed(Decimal("1.1"), FRIDAY)
    monday = date(2026, 3, 9)
    assert carry_over(published, monday, "USD", 4) == RateUsed(Decimal("1.2"), monday)
    assert carry_over(published, SUNDAY, "USD", 1) is None  # two days back is too far
    assert carry_over(published, SUNDAY, "JPY", 4) is None


# What is tested is the HTTP and XML handling and what it records: the same on any backend.
@pytest.mark.embedded_only
@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ((500, b"Internal Server Error"), "HTTP 500"),
        ((200, b"<Cube><Cube time='2026-03-06'><Cube currency='USD' rate='1.1'"), "well-formed"),
        ((200, b"<html><body>maintenance</body></html>"), "not the ECB"),
        ((200, b'<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'), "DTD"),
    ],
)
def test_a_failed_fetch_is_loud_and_keeps_the_rates(
    feed: Feed,
    client: TestClient,
    caplog: pytest.LogCaptureFixture,
    answer: tuple[int, bytes],
    why: str,
) -> None:
    feed.answers["/daily.xml"] = (200, ecb_xml({FRIDAY: RATES[FRIDAY]}))
    feed.answers["/hist-90d.xml"] = (200, ecb_xml(RATES))
    assert fetch().ok
    assert fx_gauges(client)["pocketcinema_fx_fetch_failures"] == 0
    assert fx_gauges(client)["pocketcinema_fx_last_success_age_seconds"] < 600

    feed.answers["/daily.xml"] = answer
    with caplog.at_level(logging.ERROR, logger="boxoffice.ecb"):
        failed = fetch()
        assert not fetch().ok
    assert not failed.ok
    assert failed.error is not None
    assert why in failed.error
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2
    assert "ECB FX fetch failed" in errors[0].getMessage()
    with unit_of_work() as session:
        assert service.rates_on(session, FRIDAY)["USD"] == "1.1000"  # kept as they were
        state = ecb.fetch_status(session)
        assert state is not None
        assert (state.failures, state.last_error is not None) == (2, True)
    assert fx_gauges(client)["pocketcinema_fx_fetch_failures"] == 2


def test_reports_warn_while_the_fetch_is_stale(feed: Feed, configure: Configure) -> None:
    feed.answers["/daily.xml"] = (500, b"down")
    assert not fetch().ok
    with unit_of_work() as session:
        got = reports.build_report(session, reports.ReportQuery(FRIDAY, SUNDAY))
    [warning] = got.fx_warnings
    assert warning["code"] == "fx_rates_stale"
    assert "never" in warning["detail"]
    assert "HTTP 500" in warning["detail"]
    feed.answers["/daily.xml"] = (200, ecb_xml({FRIDAY: RATES[FRIDAY]}))
    feed.answers["/hist-90d.xml"] = (200, ecb_xml(RATES))
    assert fetch().ok
    with unit_of_work() as session:
        assert reports.build_report(session, reports.ReportQuery(FRIDAY, SUNDAY)).fx_warnings == []
    # Where rates are loaded by hand (the embedded default), nothing is fetched: no warning.
    configure(fx_fetch_enabled="false")
    with unit_of_work() as session:
        assert reports.fx_warnings(session) == []
