"""Reports as finance opens them: XLSX and CSV in tidy long format, charts, and the checks on
every report parameter."""

from __future__ import annotations

import csv
import io
import struct
import warnings
from datetime import date, datetime
from typing import Any
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from accounts.models import Role, User
from boxoffice import charts, reports, repository
from boxoffice.grouping import Dimension
from catalog.models import Title
from core.db import unit_of_work, utcnow
from tests.boxoffice.support import pay, pending_ticket, refund
from tests.helpers import auth_header, create_licensed_title, create_studio, create_user

pytestmark = pytest.mark.usefixtures("db")

LA, TOKYO = ZoneInfo("America/Los_Angeles"), ZoneInfo("Asia/Tokyo")
NIGHT_TRAIN = "夜行列车"
# Rates for 10-12 March only: the 13th and 14th take the 12th's (the carry-over rule).
FX = (
    "Date,USD,CNY,JPY\n"
    "2026-03-10,1.10,7.70,160\n"
    "2026-03-11,1.20,7.80,170\n"
    "2026-03-12,1.25,7.90,180\n"
)
REPORT = "/v1/finance/boxoffice/report"
ROLLUP = "/v1/finance/boxoffice/rollups/"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def finance() -> User:
    return create_user("finance@example.com", Role.finance)


@pytest.fixture
def film() -> Title:
    """A film with a Chinese title sold in the US (USD) and Japan (JPY, no minor unit)."""
    title = create_licensed_title(
        create_studio("Lumen Films").id, prices={"US": (1299, "USD"), "JP": (1800, "JPY")}
    )
    with unit_of_work() as session:
        row = session.get_one(Title, title.id)
        row.original_title = NIGHT_TRAIN
    return title


def sell(client: TestClient, film: Title, finance: User) -> None:
    """Two US tickets on 10 March (one refunded on the 11th), one in Japan on the 12th; rates
    for 10-12 March; days rolled up through the API as finance does."""
    viewer = create_user("viewer@example.com")
    us1, us2 = pending_ticket(viewer.id, film.id), pending_ticket(viewer.id, film.id)
    pay(us1, datetime(2026, 3, 10, 12, tzinfo=LA))
    pay(us2, datetime(2026, 3, 10, 13, tzinfo=LA))
    refund(us1, 1299, datetime(2026, 3, 11, 9, tzinfo=LA))
    pay(pending_ticket(viewer.id, film.id, country="JP"), datetime(2026, 3, 12, 20, tzinfo=TOKYO))
    headers = auth_header(finance)
    loaded = client.post(
        "/v1/finance/fx-rates", content=FX, headers=headers | {"Content-Type": "text/csv"}
    )
    assert loaded.status_code == 201, loaded.text
    for day in range(10, 15):
        rolled = client.post(f"/v1/finance/boxoffice/rollups/2026-03-{day}", headers=headers)
        assert rolled.status_code == 200, rolled.text


def day_of(cell: Any) -> date:
    """A cell holding a real date (openpyxl reads dates back as datetimes)."""
    assert isinstance(cell.value, datetime), cell.value
    return cell.value.date()


def get(client: TestClient, finance: User, **params: str) -> Any:
    answer = client.get(REPORT, params=params, headers=auth_header(finance))
    assert answer.status_code == 200, answer.text
    return answer


def test_xlsx_and_csv_are_tidy_tables_in_major_units_with_every_day(
    client: TestClient, film: Title, finance: User
) -> None:
    sell(client, film, finance)
    span = {"date_from": "2026-03-10", "date_to": "2026-03-14", "group_by": "title,day"}
    book = load_workbook(io.BytesIO(get(client, finance, **span, format="xlsx").content))
    sheet = book["Box office"]
    header = [c.value for c in sheet[1]]
    assert header[:6] == ["Title", "Title ID", "Day", "Currency", "Tickets sold", "Views started"]
    assert {"Gross", "Net sales", "Fees", "Gross (USD)", "FX rate to USD"} <= set(header)
    assert sheet.freeze_panes == "E2"  # the header and the four columns naming the line
    assert all(sheet.column_dimensions[c].width > 9 for c in "ABCDE")
    col = {name: i for i, name in enumerate(header)}
    rows = [list(r) for r in sheet.iter_rows(min_row=2)]
    blank = next(i for i, r in enumerate(rows) if r[0].value is None)
    lines, totals = rows[:blank], rows[blank + 1 :]
    by_key = {(day_of(r[col["Day"]]), r[col["Currency"]].value): r for r in lines}
    # Every day of the range, for each currency the film sold in, even without sales.
    days = [date(2026, 3, d) for d in range(10, 15)]
    assert sorted(by_key) == sorted((d, c) for d in days for c in ("JPY", "USD"))
    assert all(r[col["Title"]].value == NIGHT_TRAIN for r in lines)
    assert all(r[col["Day"]].number_format == "yyyy-mm-dd" for r in lines)

    us10 = by_key[(date(2026, 3, 10), "USD")]
    assert us10[col["Tickets sold"]].value == 2
    assert us10[col["Gross"]].value == pytest.approx(25.98)
    assert us10[col["Gross"]].number_format == '#,##0.00 "USD"'
    assert us10[col["FX rate to USD"]].value == 1
    assert us10[col["Gross (CNY)"]].value == pytest.approx(181.86)  # 25.98 / 1.10 * 7.70
    assert us10[col["FX rate to CNY"]].value == pytest.approx(7)
    assert day_of(us10[col["FX rate date (CNY)"]]) == date(2026, 3, 10)
    assert by_key[(date(2026, 3, 11), "USD")][col["Refunds"]].value == pytest.approx(-12.99)
    jp12 = by_key[(date(2026, 3, 12), "JPY")]
    assert jp12[col["Gross"]].value == 1800
    assert jp12[col["Gross"]].number_format == '#,##0 "JPY"'  # yen have no minor unit
    assert jp12[col["Gross (USD)"]].value == pytest.approx(12.50)  # 1800 / 180 * 1.25
    assert jp12[col["Gross (USD)"]].number_format == '#,##0.00 "USD"'
    assert jp12[col["FX rate to USD"]].value == pytest.approx(1.25 / 180)
    assert day_of(jp12[col["FX rate date (USD)"]]) == date(2026, 3, 12)
    quiet = by_key[(date(2026, 3, 13), "USD")]
    assert (quiet[col["Tickets sold"]].value, quiet[col["Gross"]].value) == (0, 0)

    [jpy, usd, overall] = [[c.value for c in r] for r in totals]  # by currency code
    assert (usd[0], usd[col["Currency"]], usd[col["Gross"]]) == ("Total USD", "USD", 25.98)
    assert (jpy[col["Gross"]], jpy[col["Tickets sold"]]) == (1800, 1)
    assert overall[0] == "Total"
    assert overall[col["Tickets sold"]] == 3
    assert overall[col["Gross"]] is None  # amounts in two currencies do not add up
    assert overall[col["Gross (USD)"]] == pytest.approx(25.98 + 12.50)
    assert all(cell.font.bold for cell in totals[-1] if cell.value is not None)
    notes = [[c.value for c in r] for r in book["Notes"].iter_rows()]
    assert ["Time zone", "JP", "Asia/Tokyo"] in [n[:3] for n in notes]
    # The 13th is converted with the 12th's rates, and the file says so.
    assert ["FX rate carried over", "2026-03-13", "JPY", "2026-03-12"] in notes
    assert day_of(quiet[col["FX rate date (CNY)"]]) == date(2026, 3, 12)

    as_csv = get(client, finance, **span, format="csv")
    assert as_csv.content.startswith(b"\xef\xbb\xbf")  # UTF-8 byte-order mark, for Excel
    assert as_csv.headers["content-type"] == "text/csv; charset=utf-8"
    table = list(csv.DictReader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    assert table[0]["Title"] == NIGHT_TRAIN
    first = {(r["Day"], r["Currency"]): r for r in table if r["Day"]}
    assert first[("2026-03-10", "USD")]["Gross"] == "25.98"
    assert first[("2026-03-12", "JPY")]["Gross"] == "1800"
    assert first[("2026-03-12", "JPY")]["Gross (USD)"] == "12.50"
    assert [r["Title"] for r in table[-3:]] == ["Total JPY", "Total USD", "Total"]
    assert table[-1]["Gross (USD)"] == "38.48"

    # The same figures grouped another way: by month and sale currency, in JSON.
    body = get(client, finance, **span | {"group_by": "month,currency"}).json()
    assert body["group_by"] == "month,currency"
    by_currency = {r["keys"]["currency"]: r for r in body["rows"]}
    assert by_currency["USD"]["keys"]["month"] == "2026-03"
    assert by_currency["USD"]["tickets_sold"] == 2
    assert by_currency["JPY"]["local"] == [
        {
            "currency": "JPY",
            "gross_minor": 1800,
            "refunds_minor": 0,
            "chargebacks_minor": 0,
            "net_sales_minor": 1800,
            "fees_minor": by_currency["JPY"]["local"][0]["fees_minor"],
        }
    ]
    assert by_currency["JPY"]["converted"]["USD"]["gross_minor"] == 1250
    # By payment provider: every sale went through the sandbox.
    body = get(client, finance, **span | {"group_by": "provider"}).json()
    assert [r["key"] for r in body["rows"] if r["tickets_sold"]] == ["sandbox"]


def _svg_texts(svg: bytes) -> list[str]:
    root = ElementTree.fromstring(svg)  # noqa: S314  # our own output, in a test
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def _png_size(png: bytes) -> tuple[int, int]:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


@pytest.mark.embedded_only  # drawing does not depend on the database
def test_charts_read_well_for_one_day_and_for_a_year(
    client: TestClient, film: Title, finance: User
) -> None:
    viewer = create_user("viewer@example.com")
    pay(pending_ticket(viewer.id, film.id), datetime(2026, 3, 10, 12, tzinfo=LA))
    headers = auth_header(finance) | {"Content-Type": "text/csv"}
    assert client.post("/v1/finance/fx-rates", content=FX, headers=headers).status_code == 201
    assert client.post(ROLLUP + "2026-03-10", headers=auth_header(finance)).status_code == 200
    one_day = {"date_from": "2026-03-10", "date_to": "2026-03-10", "group_by": "title"}
    svg = get(client, finance, **one_day, chart="svg")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    texts = _svg_texts(svg.content)
    assert "Box office, 2026-03-10" in texts
    assert {"Gross (USD)", "Qualified views", NIGHT_TRAIN, "12.99 USD"} <= set(texts)
    assert any(t.endswith(" USD") and t != "12.99 USD" for t in texts)  # axis ticks
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        png = get(client, finance, **one_day, chart="png")
    assert png.headers["content-type"] == "image/png"
    assert _png_size(png.content) == (1100, 450)
    if any(path.is_file() for path in charts.CJK_FONTS):  # ./run ops-setup puts one there
        assert not [w for w in caught if "missing from font" in str(w.message)]

    year = {"date_from": "2025-03-15", "date_to": "2026-03-14", "group_by": "title,week"}
    texts = _svg_texts(get(client, finance, **year, chart="svg", chart_currency="CNY").content)
    assert "Box office, 2025-03-15 to 2026-03-14" in texts
    assert {"Gross, weekly (CNY)", "Gross (CNY)", "Week (local calendar)"} <= set(texts)
    # A year's axis names months and the years it spans, not 365 day labels.
    assert {"Jul", "2026"} <= set(texts)
    assert sum(t.startswith("2026-") for t in texts) == 0
    width, height = _png_size(get(client, finance, **year, chart="png").content)
    assert (width, height) == (1100, 750)


BAD_PARAMETERS: list[tuple[dict[str, str], int, str]] = [
    ({"group_by": "title,genre"}, 422, "report_group_by_unknown"),
    ({"group_by": "store"}, 422, "report_group_by_unavailable"),
    ({"group_by": "store,day"}, 422, "report_group_by_unavailable"),
    ({"group_by": "day,month"}, 422, "report_group_by_invalid"),
    ({"group_by": "title,title"}, 422, "report_group_by_invalid"),
    ({"group_by": "title,"}, 422, "report_group_by_invalid"),
    ({"date_to": "2026-02-01"}, 422, "report_range_invalid"),
    ({"date_from": "2023-01-01"}, 422, "report_range_too_long"),
    ({"date_from": "9999-12-30", "date_to": "9999-12-31"}, 422, "report_range_invalid"),
    (
        {"date_from": "9999-12-30", "date_to": "9999-12-31", "chart": "png"},
        422,
        "report_range_invalid",
    ),
    ({"date_from": "2026-02-30"}, 422, "invalid_input"),
    ({"format": "pdf"}, 422, "invalid_input"),
    ({"chart": "gif"}, 422, "invalid_input"),
    ({"chart": "svg", "format": "xlsx"}, 422, "report_format_conflict"),
    ({"chart": "svg", "chart_currency": "EUR"}, 422, "report_currency_unknown"),
    ({"chart_currency": "USD"}, 422, "report_format_conflict"),
    ({"territory": "USA"}, 422, "territory_invalid"),
    ({"limit": "0"}, 422, "invalid_input"),
    ({"title_id": "nope"}, 404, "title_not_found"),
]


@pytest.mark.embedded_only  # the checks run before any roll-up SQL
def test_every_report_parameter_is_checked(client: TestClient, finance: User) -> None:
    studio = create_studio("Lumen Films")
    studio_user = create_user("studio@example.com", Role.studio, studio.id)
    for params, status, code in BAD_PARAMETERS:
        query = {"date_from": "2026-03-01", "date_to": "2026-03-31"} | params
        # The studio route shares the checks; a title outside its scope is not found alike.
        for route, caller in ((REPORT, finance), ("/v1/studio/boxoffice/report", studio_user)):
            answer = client.get(route, params=query, headers=auth_header(caller))
            assert (answer.status_code, answer.json()["code"]) == (status, code), (route, params)
            assert answer.headers["content-type"] == "application/problem+json"


def test_money_formats_follow_each_currencys_decimals() -> None:
    from boxoffice.report_files import money_format

    assert money_format("USD") == '#,##0.00 "USD"'
    assert money_format("JPY") == '#,##0 "JPY"'
    assert money_format("KWD") == '#,##0.000 "KWD"'
    assert money_format("ISK") == '#,##0 "ISK"'  # sent as two decimals, shown whole


def test_a_cell_sold_in_two_currencies_keeps_each_currencys_amounts_apart() -> None:
    """Roll-up rows written as the roll-up writes them: money per currency, converted
    amounts per (title, territory, provider, day). A US cell that sold in USD and CAD on one
    day (its price changed currency) cannot split its converted amounts by currency, so its
    counts and converted amounts get a line of their own; the local amounts stay on their
    currency's line; nothing is lost."""
    title = create_licensed_title(create_studio("Lumen Films").id, slug="two-prices")
    day = date(2026, 3, 10)

    def totals(territory: str, currency: str, on: date = day, **sums: int) -> dict[str, Any]:
        provider = "sandbox" if currency else ""
        keys = {"day": on, "title_id": title.id, "territory": territory, "provider": provider}
        return keys | {"currency": currency} | sums

    def converted(territory: str, reporting: str, **sums: int) -> dict[str, Any]:
        keys = {"day": day, "title_id": title.id, "territory": territory, "provider": "sandbox"}
        return keys | {"reporting_currency": reporting} | sums

    with unit_of_work() as session:
        repository.replace_day(
            session,
            day,
            [
                totals("US", "USD", tickets_sold=1, gross_minor=1299, fees_minor=60),
                totals("US", "CAD", tickets_sold=1, gross_minor=1599),
                totals("FR", "EUR", tickets_sold=1, gross_minor=999),
            ],
            [
                converted(
                    "US",
                    "USD",
                    gross_minor=2468,
                    fees_minor=60,
                    net_minor=2408,
                    studio_payable_minor=1686,
                ),
                converted("US", "CNY", unconverted=1),
                converted("FR", "USD", gross_minor=1100, net_minor=1100, studio_payable_minor=770),
                converted("FR", "CNY", unconverted=1),
            ],
        )
        # The next day the US viewers watched; nothing was sold.
        next_day = day.replace(day=11)
        repository.replace_day(
            session, next_day, [totals("US", "", on=next_day, views_started=3)], []
        )
        repository.refresh_week(session, repository.week_of(day), utcnow())
        lines = reports.build_lines(
            session, reports.ReportQuery(day, date(2026, 3, 22), group_by=Dimension.title)
        )
        by_week = reports.build_report(
            session,
            reports.ReportQuery(
                day, date(2026, 3, 22), group_by=(Dimension.territory, Dimension.week)
            ),
        )
    got = {ln.currency: ln.row for ln in lines.lines}
    assert list(got) == ["CAD", "CAD+USD", "EUR", "USD"]
    mixed = got["CAD+USD"]
    assert (mixed.tickets_sold, mixed.views_started, mixed.local) == (2, 3, [])
    assert mixed.converted["USD"].gross_minor == 2468
    assert mixed.converted["CNY"].gross_minor is None  # no rate: never guessed
    assert [(m.currency, m.gross_minor) for m in got["CAD"].local] == [("CAD", 1599)]
    assert [(m.currency, m.gross_minor, m.fees_minor) for m in got["USD"].local] == [
        ("USD", 1299, 60)
    ]
    assert (got["EUR"].tickets_sold, got["EUR"].converted["USD"].platform_share_minor) == (1, 330)
    assert lines.total.row.tickets_sold == 3
    assert lines.total.row.converted["USD"].gross_minor == 2468 + 1100
    assert [t.currency for t in lines.currency_totals] == ["CAD", "CAD+USD", "EUR", "USD"]
    # Weeks of the range for each territory, the quiet week included.
    assert [r.key for r in by_week.rows] == [
        "FR|2026-W11",
        "FR|2026-W12",
        "US|2026-W11",
        "US|2026-W12",
    ]
    assert by_week.rows[3].tickets_sold == 0
    assert by_week.totals.tickets_sold == 3
