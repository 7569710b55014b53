"""Roll-ups and reports as finance and studios see them."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from accounts.models import Role, User
from boxoffice import reports, service
from catalog.models import Title
from core.db import unit_of_work
from tests.boxoffice.support import dispute, pay, pending_ticket, refund
from tests.helpers import auth_header, create_licensed_title, create_studio, create_user

pytestmark = pytest.mark.usefixtures("db")

LA = ZoneInfo("America/Los_Angeles")
DAY = date(2026, 3, 10)
FX = "Date,USD,CNY,CAD\n2026-03-10,1.10,7.70,1.50\n2026-03-11,1.20,7.80,1.60\n"


@pytest.fixture
def studio_user() -> User:
    studio = create_studio("Lumen Films")
    return create_user("studio@example.com", Role.studio, studio.id)


@pytest.fixture
def film(studio_user: User) -> Title:
    assert studio_user.studio_id is not None
    return create_licensed_title(studio_user.studio_id, slug="night-train")


@pytest.fixture
def finance() -> User:
    return create_user("finance@example.com", Role.finance)


def roll(*days: date) -> None:
    with unit_of_work() as session:
        for day in days:
            service.rollup_day(session, day)


def report(**kw: object) -> reports.Report:
    with unit_of_work() as session:
        return reports.build_report(session, reports.ReportQuery(**kw))  # type: ignore[arg-type]


def test_a_purchase_at_2330_in_los_angeles_lands_on_that_local_day(film: Title) -> None:
    viewer = create_user("late@example.com")
    ticket = pending_ticket(viewer.id, film.id)
    at = datetime(2026, 3, 10, 23, 30, tzinfo=LA)  # 06:30 UTC on 11 March
    pay(ticket, at.astimezone(UTC))
    roll(DAY, DAY + timedelta(days=1))
    got = report(date_from=DAY, date_to=DAY + timedelta(days=1))
    by_day = {r.key: r for r in got.rows}
    assert by_day["2026-03-10"].tickets_sold == 1
    assert by_day["2026-03-11"].tickets_sold == 0  # listed, with nothing sold
    assert got.time_zones == {"US": "America/Los_Angeles"}


def test_refunds_land_on_their_own_day_and_rerunning_changes_nothing(film: Title) -> None:
    viewer = create_user("v@example.com")
    t1, t2 = pending_ticket(viewer.id, film.id), pending_ticket(viewer.id, film.id)
    noon = datetime(2026, 3, 10, 12, tzinfo=LA)
    pay(t1, noon)
    pay(t2, noon)
    roll(DAY)
    before = report(date_from=DAY, date_to=DAY + timedelta(days=1))
    # A refund the next day, and a chargeback recorded late (written now, happened on day 1).
    refund(t1, 1299, noon + timedelta(days=1))
    dispute(t2, noon + timedelta(hours=2))
    with unit_of_work() as session:
        days = service.rollup_pending(session)
    assert set(days) >= {DAY, DAY + timedelta(days=1)}
    after = report(date_from=DAY, date_to=DAY + timedelta(days=1))
    [d1, d2] = after.rows
    [usd1] = d1.local
    assert (usd1.gross_minor, usd1.refunds_minor, usd1.chargebacks_minor) == (2598, 0, -1299)
    assert d1.tickets_sold == 2  # tickets sold never shrink: the past is not edited
    [usd2] = d2.local
    assert (usd2.gross_minor, usd2.refunds_minor, usd2.net_sales_minor) == (0, -1299, -1299)
    assert after.totals.local[0].net_sales_minor == 0
    assert before.rows[0].local[0].gross_minor == 2598
    roll(DAY, DAY + timedelta(days=1))  # again: the same numbers
    assert report(date_from=DAY, date_to=DAY + timedelta(days=1)) == after


def test_reports_convert_with_each_days_rate_carry_it_over_and_flag_missing_rates(
    film: Title,
) -> None:
    viewer = create_user("v@example.com")
    ca_film = create_licensed_title(film.studio_id, slug="maple", prices={"CA": (1500, "CAD")})
    toronto = ZoneInfo("America/Toronto")
    for day in (10, 12, 20):
        pay(
            pending_ticket(viewer.id, ca_film.id, country="CA"),
            datetime(2026, 3, day, 12, tzinfo=toronto),
        )
    with unit_of_work() as session:
        service.load_rates(session, FX, source="test")
        service.set_revenue_share(
            session, title_id=ca_film.id, territory=None, studio_share_percent=Decimal(60), by=None
        )
    roll(DAY, date(2026, 3, 12), date(2026, 3, 20))
    got = report(date_from=DAY, date_to=date(2026, 3, 20))
    assert len(got.rows) == 11  # every day of the range is listed
    by_day = {r.key: r for r in got.rows}
    d10, d12, d20 = by_day["2026-03-10"], by_day["2026-03-12"], by_day["2026-03-20"]
    assert by_day["2026-03-11"].tickets_sold == 0
    usd = d10.converted["USD"]
    # 1500 CAD at 1.50 CAD/EUR and 1.10 USD/EUR = 1100 USD cents; the sandbox fee of
    # 74 CAD cents is 54.27 -> 54 USD cents; 60 % of the net to the studio.
    assert (usd.gross_minor, usd.fees_minor, usd.net_minor) == (1100, 54, 1046)
    assert (usd.studio_payable_minor, usd.platform_share_minor) == (628, 418)
    assert d10.converted["CNY"].gross_minor == 7700
    # 12 March has no rates of its own: 11 March's are carried over (1500 / 1.60 x 1.20),
    # and the report names the rate's own date beside the day.
    assert d12.converted["USD"].gross_minor == 1125
    assert {"day": "2026-03-12", "currency": "CAD", "rate_date": "2026-03-11"} in got.carried_rates
    # 20 March is 9 days past the last rate, beyond the carry-over limit: nothing is guessed,
    # the gap is named.
    assert d20.converted["USD"].gross_minor is None
    assert {"day": "2026-03-20", "currency": "CAD"} in got.missing_rates
    assert {"day": "2026-03-12", "currency": "CAD"} not in got.missing_rates
    assert got.totals.converted["USD"].gross_minor is None
    assert got.totals.local[0].gross_minor == 4500


def test_finance_and_studio_reports_over_the_api(
    client: TestClient, film: Title, studio_user: User, finance: User
) -> None:
    viewer = create_user("v@example.com")
    ticket = pending_ticket(viewer.id, film.id)
    pay(ticket, datetime(2026, 3, 10, 12, tzinfo=LA))
    other = create_licensed_title(create_studio("Other").id, slug="other")
    pay(pending_ticket(viewer.id, other.id), datetime(2026, 3, 10, 13, tzinfo=LA))
    loaded = client.post(
        "/v1/finance/fx-rates",
        content=FX,
        headers=auth_header(finance) | {"Content-Type": "text/csv"},
    )
    assert loaded.status_code == 201, loaded.text
    assert loaded.json()["rates"] == 6
    assert (
        client.post(
            "/v1/finance/boxoffice/rollups/2026-03-10", headers=auth_header(finance)
        ).status_code
        == 200
    )
    params = {"date_from": "2026-03-01", "date_to": "2026-03-31", "group_by": "title"}
    body = client.get(
        "/v1/finance/boxoffice/report", params=params, headers=auth_header(finance)
    ).json()
    assert body["total_groups"] == 2
    assert body["totals"]["tickets_sold"] == 2
    assert body["totals"]["converted"]["USD"]["gross_minor"] == 2598
    mine = client.get(
        "/v1/studio/boxoffice/report", params=params, headers=auth_header(studio_user)
    ).json()
    assert [r["key"] for r in mine["rows"]] == [film.id]
    refused = client.get(
        "/v1/studio/boxoffice/report",
        params=params | {"title_id": other.id},
        headers=auth_header(studio_user),
    )
    assert refused.status_code == 404
    assert refused.json()["code"] == "title_not_found"
    assert (
        client.get(
            "/v1/finance/boxoffice/report", params=params, headers=auth_header(viewer)
        ).status_code
        == 403
    )
    as_csv = client.get(
        "/v1/finance/boxoffice/report",
        params=params | {"format": "csv"},
        headers=auth_header(finance),
    )
    rows = list(csv.DictReader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    assert rows[-1]["Title"] == "Total"
    assert rows[-1]["Gross (USD)"] == "25.98"
    as_xlsx = client.get(
        "/v1/finance/boxoffice/report",
        params=params | {"format": "xlsx"},
        headers=auth_header(finance),
    )
    sheet = load_workbook(io.BytesIO(as_xlsx.content))["Box office"]
    # Header, two titles, a blank line, the USD total and the total of every line.
    assert sheet.max_row == 6
    chart = client.get(
        "/v1/finance/boxoffice/chart.svg", params=params, headers=auth_header(finance)
    )
    assert chart.headers["content-type"].startswith("image/svg+xml")
    assert "Night Train" in chart.text
    assert "<path" in chart.text
    page = client.get(
        "/v1/finance/boxoffice/report",
        params=params | {"limit": 1, "offset": 1},
        headers=auth_header(finance),
    ).json()
    assert len(page["rows"]) == 1
    assert page["totals"]["tickets_sold"] == 2
    bad = client.post(
        "/v1/finance/fx-rates",
        content="Day,USD\nx,1\n",
        headers=auth_header(finance) | {"Content-Type": "text/csv"},
    )
    assert bad.status_code == 422
    assert bad.json()["code"] == "fx_csv_invalid"


def test_reconciliation_reports_every_difference_with_the_sandbox(
    film: Title, finance: User, client: TestClient
) -> None:
    viewer = create_user("v@example.com")
    ticket = pending_ticket(viewer.id, film.id)
    pay(ticket, datetime(2026, 3, 10, 12, tzinfo=UTC))
    refund(ticket, 500, datetime(2026, 3, 10, 13, tzinfo=UTC))
    got = client.get("/v1/finance/reconciliation/2026-03-10", headers=auth_header(finance)).json()
    assert (got["matched"], got["differences"]) == (2, [])
