"""Box-office reports from the daily roll-up: filtered, grouped, paginated, with totals;
JSON (the dataclasses), CSV, XLSX and an SVG chart.

A report reads only roll-up rows (``boxoffice_day`` and ``boxoffice_day_converted``, through
``repository.totals_by`` / ``converted_by``) inside one read transaction, so it sees one
snapshot: a roll-up replacing a day commits all of that day's rows at once, and the report
counts either the old rows or the new ones, never both.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from html import escape
from typing import Any

from sqlalchemy.orm import Session

from boxoffice import ecb, repository
from boxoffice.definitions import territory_zone
from boxoffice.fx import RateBook
from core.db import utcnow
from core.errors import InvalidInput, NotFound
from core.scope import ALL_STUDIOS, StudioScope
from core.settings import Settings, get_settings

MAX_DAYS = 731


class GroupBy(StrEnum):
    day = "day"
    week = "week"  # ISO week, e.g. 2026-W07
    month = "month"
    title = "title"  # type: ignore[assignment]  # shadows str.title; the name is the API's
    territory = "territory"


@dataclass(frozen=True)
class ReportQuery:
    date_from: date
    date_to: date
    group_by: GroupBy = GroupBy.day
    title_ids: tuple[str, ...] = ()
    # Whose titles: the API always passes the caller's scope (accounts.service.studio_scope);
    # jobs and benchmarks report over every studio.
    scope: StudioScope = ALL_STUDIOS
    territories: tuple[str, ...] = ()
    offset: int = 0
    limit: int = 100


@dataclass
class LocalMoney:
    """Amounts in one currency as the ledger holds them (minor units)."""

    currency: str
    gross_minor: int = 0
    refunds_minor: int = 0
    chargebacks_minor: int = 0  # chargebacks net of reversals (won disputes)
    net_sales_minor: int = 0  # gross + refunds + chargebacks
    fees_minor: int = 0  # provider fees charged in this currency


@dataclass
class Converted:
    """Amounts in a reporting currency, each day converted with that day's rate. All None
    when some amount of the group had no rate for its day (see ``missing_rates``)."""

    gross_minor: int | None = 0
    refunds_minor: int | None = 0
    chargebacks_minor: int | None = 0
    fees_minor: int | None = 0
    net_minor: int | None = 0  # net sales - fees
    studio_payable_minor: int | None = 0
    platform_share_minor: int | None = 0
    unconverted_items: int = 0  # (title, territory, day) cells lacking a rate


@dataclass
class ReportRow:
    key: str
    label: str
    tickets_sold: int = 0
    views_started: int = 0
    qualified_views: int = 0
    unique_viewers: int = 0  # sum of daily distinct viewers
    local: list[LocalMoney] = field(default_factory=list)
    converted: dict[str, Converted] = field(default_factory=dict)


@dataclass
class Report:
    date_from: date
    date_to: date
    group_by: GroupBy
    reporting_currencies: list[str]
    time_zones: dict[str, str]  # territory -> the zone its days are counted in
    missing_rates: list[dict[str, str]]  # {"day", "currency"}: amounts left unconverted
    # {"day", "currency", "rate_date"}: days converted with an earlier day's rate (weekends,
    # holidays, today before the ECB publishes: the carry-over rule, docs/boxoffice.md#fx)
    carried_rates: list[dict[str, str]]
    fx_warnings: list[dict[str, str]]  # {"code", "detail"}: e.g. the ECB fetch is stale
    total_groups: int
    offset: int
    limit: int
    rows: list[ReportRow]
    totals: ReportRow

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_COUNTS = ("tickets_sold", "views_started", "qualified_views", "unique_viewers")
_LOCAL = {
    "gross_minor": "gross_minor",
    "refunds_minor": "refunds_minor",
    "chargebacks_minor": "chargebacks_minor",
    "chargeback_reversals_minor": "chargebacks_minor",
    "fees_minor": "fees_minor",
}
_CONVERTED = (
    "gross_minor",
    "refunds_minor",
    "chargebacks_minor",
    "fees_minor",
    "net_minor",
    "studio_payable_minor",
)


def check_query(session: Session, query: ReportQuery) -> None:
    if query.date_to < query.date_from:
        raise InvalidInput("date_to is before date_from", code="report_range_invalid")
    if (query.date_to - query.date_from).days >= MAX_DAYS:
        raise InvalidInput(f"ask for at most {MAX_DAYS} days at once", code="report_range_too_long")
    for title_id in query.title_ids:
        # Another studio's title is "not found", exactly like a title that does not exist.
        if not repository.title_in_scope(session, title_id, query.scope):
            raise NotFound("no such title", code="title_not_found")


def _filters(query: ReportQuery) -> repository.RollupFilter:
    return repository.RollupFilter(
        date_from=query.date_from,
        date_to=query.date_to,
        scope=query.scope,
        title_ids=query.title_ids,
        territories=query.territories,
    )


def _bucket(day: date, group_by: GroupBy) -> str:
    if group_by is GroupBy.week:
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    if group_by is GroupBy.month:
        return f"{day.year}-{day.month:02d}"
    return day.isoformat()


def _finish(
    row: ReportRow,
    local: dict[str, LocalMoney],
    converted: dict[str, Converted],
    currencies: list[str],
) -> None:
    for money in local.values():
        money.net_sales_minor = money.gross_minor + money.refunds_minor + money.chargebacks_minor
    row.local = [local[c] for c in sorted(local)]
    for currency in currencies:
        conv = converted.setdefault(currency, Converted())
        if conv.unconverted_items:
            conv.gross_minor = conv.refunds_minor = conv.chargebacks_minor = None
            conv.fees_minor = conv.net_minor = conv.studio_payable_minor = (
                conv.platform_share_minor
            ) = None
        elif conv.net_minor is not None and conv.studio_payable_minor is not None:
            conv.platform_share_minor = conv.net_minor - conv.studio_payable_minor
    row.converted = {c: converted[c] for c in currencies}


_Group = tuple[ReportRow, dict[str, LocalMoney], dict[str, Converted]]


def build_report(session: Session, query: ReportQuery) -> Report:
    check_query(session, query)
    settings = get_settings()
    currencies = list(settings.boxoffice_reporting_currencies)
    # Grouping by title or territory reads those rows directly; day, week and month read
    # daily rows and bucket them here (at most MAX_DAYS keys).
    key = "territory" if query.group_by is GroupBy.territory else "title"
    if query.group_by not in (GroupBy.title, GroupBy.territory):
        key = "day"
    where = _filters(query)
    groups: dict[str, _Group] = {}
    territories: set[str] = set()

    def group(value: object) -> _Group:
        name = _bucket(value, query.group_by) if isinstance(value, date) else str(value)
        found = groups.get(name)
        if found is None:
            found = groups[name] = (ReportRow(name, name), {}, {})
        return found

    # Territory rides along in the grouping (a few more rows) so the report's time zones
    # come from the same scan.
    dims = [key] if key == "territory" else [key, "territory"]
    for r in repository.totals_by(session, [*dims, "currency"], where):
        territories.add(r.territory)
        row, local, _ = group(getattr(r, key))
        for name in _COUNTS:
            setattr(row, name, getattr(row, name) + int(getattr(r, name) or 0))
        if r.currency:
            money = local.setdefault(r.currency, LocalMoney(r.currency))
            for column, attr in _LOCAL.items():
                setattr(money, attr, getattr(money, attr) + int(getattr(r, column) or 0))
    unconverted = 0
    for r in repository.converted_by(session, [key], where, currencies):
        _, _, converted = group(getattr(r, key))
        conv = converted.setdefault(r.reporting_currency, Converted())
        conv.unconverted_items += int(r.unconverted or 0)
        unconverted += int(r.unconverted or 0)
        for attr in _CONVERTED:
            setattr(conv, attr, (getattr(conv, attr) or 0) + int(getattr(r, attr) or 0))
    if query.group_by is GroupBy.title and groups:
        names = repository.title_names(session, list(groups))
        for name, (row, _, _) in groups.items():
            row.label = names.get(name, name)
    totals: _Group = (ReportRow("total", "Total"), {}, {})
    for row, local, converted in groups.values():
        _merge_into(totals, row, local, converted)
        _finish(row, local, converted, currencies)
    _finish(totals[0], totals[1], totals[2], currencies)
    ordered = [groups[k][0] for k in sorted(groups)]
    if query.group_by is GroupBy.title:
        ordered.sort(key=lambda r: (r.label.lower(), r.key))
    missing, carried = _rates_used(session, query, currencies, settings, totals[1], unconverted)
    return Report(
        date_from=query.date_from,
        date_to=query.date_to,
        group_by=query.group_by,
        reporting_currencies=currencies,
        time_zones={t: territory_zone(t, settings) for t in sorted(territories)},
        missing_rates=missing,
        carried_rates=carried,
        fx_warnings=fx_warnings(session, settings),
        total_groups=len(ordered),
        offset=query.offset,
        limit=query.limit,
        rows=ordered[query.offset : query.offset + query.limit],
        totals=totals[0],
    )


def _rates_used(
    session: Session,
    query: ReportQuery,
    currencies: list[str],
    settings: Settings,
    local: dict[str, LocalMoney],
    unconverted: int,
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The rates behind the converted figures: (day, currency) pairs converted with an
    earlier day's rate, with that rate's date, for every day of the range up to today and
    every currency the report converts (its local currencies and the reporting ones); and,
    when some amounts were left unconverted, the pairs that had no rate on a day with money."""
    codes = sorted(({*local, *currencies} - {"EUR"}) if local else set())
    if not codes:
        return [], []
    last = min(query.date_to, utcnow().date())
    book = RateBook(session, query.date_from, max(last, query.date_to), settings)
    carried: list[dict[str, str]] = []
    day = query.date_from
    while day <= last:
        for code in codes:
            used = book.rate(day, code)
            if used is not None and used.rate_date != day:
                carried.append(
                    {
                        "day": day.isoformat(),
                        "currency": code,
                        "rate_date": used.rate_date.isoformat(),
                    }
                )
        day += timedelta(days=1)
    missing: set[tuple[date, str]] = set()
    if unconverted:  # rare: read which days held money in which currency
        for day, currency in repository.money_days(session, _filters(query)):
            for code in {currency, *currencies} - {"EUR"}:
                if book.rate(day, code) is None:
                    missing.add((day, code))
    return [{"day": d.isoformat(), "currency": c} for d, c in sorted(missing)], carried


def fx_warnings(session: Session, settings: Settings | None = None) -> list[dict[str, str]]:
    """Warnings about the rates themselves: the ECB fetch has not succeeded lately."""
    settings = settings or get_settings()
    if not settings.fx_fetching:
        return []
    state = ecb.fetch_status(session)
    last = state.last_success_at if state else None
    limit = timedelta(hours=settings.fx_stale_after_hours)
    if last is not None and utcnow() - last <= limit:
        return []
    since = "never" if last is None else f"last at {last.isoformat()}"
    error = f"; last error: {state.last_error}" if state and state.last_error else ""
    return [
        {
            "code": "fx_rates_stale",
            "detail": f"the ECB rates have not been fetched successfully ({since}){error}; "
            "recent days may be converted with old or carried-over rates",
        }
    ]


def _merge_into(
    totals: _Group,
    row: ReportRow,
    local: dict[str, LocalMoney],
    converted: dict[str, Converted],
) -> None:
    t_row, t_local, t_conv = totals
    for name in _COUNTS:
        setattr(t_row, name, getattr(t_row, name) + getattr(row, name))
    for currency, money in local.items():
        target = t_local.setdefault(currency, LocalMoney(currency))
        for attr in ("gross_minor", "refunds_minor", "chargebacks_minor", "fees_minor"):
            setattr(target, attr, getattr(target, attr) + getattr(money, attr))
    for currency, conv in converted.items():
        target_c = t_conv.setdefault(currency, Converted())
        target_c.unconverted_items += conv.unconverted_items
        for attr in _CONVERTED:
            setattr(target_c, attr, (getattr(target_c, attr) or 0) + (getattr(conv, attr) or 0))


# --- files ---------------------------------------------------------------------------------

_COUNT_COLUMNS = ["tickets_sold", "views_started", "qualified_views", "unique_viewers"]
_CONV_COLUMNS = [
    "gross_minor",
    "refunds_minor",
    "chargebacks_minor",
    "fees_minor",
    "net_minor",
    "studio_payable_minor",
    "platform_share_minor",
]


def table(report: Report) -> tuple[list[str], list[list[Any]]]:
    """The report as one header and flat rows (the page's rows, then the totals)."""
    header = ["key", "label", *_COUNT_COLUMNS, "local_amounts"]
    for currency in report.reporting_currencies:
        header += [f"{c.removesuffix('_minor')}_{currency}_minor" for c in _CONV_COLUMNS]
    lines: list[list[Any]] = []
    for row in [*report.rows, report.totals]:
        local = "; ".join(
            f"{m.currency} gross={m.gross_minor} refunds={m.refunds_minor} "
            f"chargebacks={m.chargebacks_minor} net_sales={m.net_sales_minor} fees={m.fees_minor}"
            for m in row.local
        )
        line: list[Any] = [row.key, row.label, *(getattr(row, c) for c in _COUNT_COLUMNS), local]
        for currency in report.reporting_currencies:
            conv = row.converted[currency]
            line += [getattr(conv, c) for c in _CONV_COLUMNS]
        lines.append(line)
    return header, lines


def to_csv(report: Report) -> str:
    header, lines = table(report)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(["" if v is None else v for v in line] for line in lines)
    return out.getvalue()


def to_xlsx(report: Report) -> bytes:
    from openpyxl import Workbook

    header, lines = table(report)
    book = Workbook()
    sheet = book.create_sheet("Box office", 0)
    book.remove(book.worksheets[1])  # the default empty sheet
    sheet.append(header)
    for line in lines:
        sheet.append(line)
    notes = book.create_sheet("Notes")
    notes.append(["date_from", report.date_from.isoformat()])
    notes.append(["date_to", report.date_to.isoformat()])
    notes.append(["group_by", report.group_by.value])
    notes.append(["amounts", "minor units of the currency named in the column"])
    for territory, zone in report.time_zones.items():
        notes.append(["time zone", territory, zone])
    for item in report.missing_rates:
        notes.append(["missing FX rate", item["day"], item["currency"]])
    for item in report.carried_rates:
        notes.append(["FX rate carried over", item["day"], item["currency"], item["rate_date"]])
    for warning in report.fx_warnings:
        notes.append(["FX warning", warning["code"], warning["detail"]])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def daily_series(
    session: Session, query: ReportQuery, currency: str
) -> dict[str, dict[date, tuple[int | None, int]]]:
    """Per title label: day -> (gross in ``currency`` or None if unconverted, qualified views)."""
    check_query(session, query)
    where = _filters(query)
    gross: dict[tuple[str, date], int | None] = {}
    for r in repository.converted_by(session, ["title", "day"], where, [currency]):
        gross[(r.title, r.day)] = None if r.unconverted else int(r.gross_minor or 0)
    qualified: dict[tuple[str, date], int] = {}
    for r in repository.totals_by(session, ["title", "day"], where):
        qualified[(r.title, r.day)] = int(r.qualified_views or 0)
    titles = sorted({t for t, _ in gross} | {t for t, _ in qualified})
    names = repository.title_names(session, titles)
    series: dict[str, dict[date, tuple[int | None, int]]] = {}
    for title_id in titles:
        series[f"{names.get(title_id, title_id)} ({title_id[:8]})"] = {
            day: (gross.get((t, day), 0), qualified.get((t, day), 0))
            for (t, day) in {*gross, *qualified}
            if t == title_id
        }
    return series


_PALETTE = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
]


def chart_svg(
    session: Session, query: ReportQuery, currency: str | None = None, max_titles: int = 10
) -> str:
    """Two panels over the date range: daily gross (in the first reporting currency) and
    daily qualified views, one line per title (the top ``max_titles`` by gross). Days whose
    gross could not be converted are left as gaps, not drawn as zero."""
    currency = currency or get_settings().boxoffice_reporting_currencies[0]
    series = daily_series(session, query, currency)
    top = sorted(series, key=lambda n: -sum(g or 0 for g, _ in series[n].values()))[:max_titles]
    days = [
        query.date_from + timedelta(days=i)
        for i in range((query.date_to - query.date_from).days + 1)
    ]
    width, panel, left, top_pad = 900, 220, 70, 40
    height = top_pad + 2 * (panel + 50) + 20 * len(top) + 20

    def x(i: int) -> float:
        return left + (width - left - 20) * (i / max(len(days) - 1, 1))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
        f'<text x="{left}" y="20" font-size="15">Box office {query.date_from} to {query.date_to}</text>',
    ]
    for p, (label, pick) in enumerate(
        ((f"Daily gross ({currency}, minor units)", 0), ("Daily qualified views", 1))
    ):
        y0 = top_pad + p * (panel + 50)
        values = [
            series[n][d][pick]
            for n in top
            for d in days
            if d in series[n] and series[n][d][pick] is not None
        ]
        peak = max([v for v in values if v is not None] + [1])
        parts.append(f'<text x="{left}" y="{y0 + 14}">{escape(label)} — max {peak}</text>')
        parts.append(
            f'<line x1="{left}" y1="{y0 + panel}" x2="{width - 20}" y2="{y0 + panel}" stroke="#999"/>'
        )
        parts.append(
            f'<line x1="{left}" y1="{y0 + 20}" x2="{left}" y2="{y0 + panel}" stroke="#999"/>'
        )
        for i, name in enumerate(top):
            segment: list[str] = []
            runs: list[list[str]] = [segment]
            for j, d in enumerate(days):
                v = series[name].get(d, (0, 0))[pick]
                if v is None:  # unconverted: a gap
                    segment = []
                    runs.append(segment)
                    continue
                segment.append(f"{x(j):.1f},{y0 + panel - (panel - 20) * v / peak:.1f}")
            for run in runs:
                if run:
                    parts.append(
                        f'<polyline fill="none" stroke="{_PALETTE[i % 10]}" stroke-width="1.5" points="{" ".join(run)}"/>'
                    )
    legend_y = top_pad + 2 * (panel + 50)
    for i, name in enumerate(top):
        y = legend_y + 20 * i
        parts.append(
            f'<rect x="{left}" y="{y - 10}" width="12" height="12" fill="{_PALETTE[i % 10]}"/>'
        )
        parts.append(f'<text x="{left + 18}" y="{y}">{escape(name)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)
