"""Box-office reports from the daily roll-up: filtered, grouped by any combination of
dimensions (boxoffice/grouping.py), every bucket of the range present, paginated, with
totals. JSON is the dataclasses; boxoffice/report_files.py writes CSV and XLSX and
boxoffice/charts.py draws charts, all from the lines built here.

A report is read with one SELECT … GROUP BY over ``boxoffice_daily``, so it sees one
snapshot: a roll-up replacing a day commits all of that day's rows at once, and the report
counts either the old rows or the new ones, never both.

**Lines by sale currency.** Local amounts can only be added up within one currency, so the
files (and ``group_by=currency``) split each group into one line per currency the tickets
were sold in. The roll-up keeps counts and converted amounts per (title, territory, day),
not per currency, so the query then also groups by territory and each (title, territory,
day) cell's counts, converted amounts and fees go to the line of the currency its sales
were in. A cell that sold in two currencies in one period (a price changed currency) puts
them on a line whose currency reads ``CAD+USD``, its local amounts on their own lines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from decimal import Context, Decimal
from typing import Any

from sqlalchemy.orm import Session

from boxoffice import ecb, repository
from boxoffice.definitions import territory_zone
from boxoffice.fx import RateBook
from boxoffice.grouping import (
    TIME_DIMENSIONS,
    Dimension,
    bucket_days,
    bucket_label,
    bucket_start,
    buckets,
    time_dimension,
)
from core.db import utcnow
from core.errors import InvalidInput, NotFound
from core.scope import ALL_STUDIOS, StudioScope
from core.settings import Settings, get_settings

MAX_DAYS = 731
EARLIEST, LATEST = date(1970, 1, 1), date(9000, 12, 31)
# Lines in one CSV or XLSX file; past it, narrow the report or page with offset and limit.
MAX_FILE_LINES = 50_000
DEFAULT_PAGE = 100
_TEN_DIGITS = Context(prec=10)

# The name a caller used before groupings could be combined; one dimension each.
GroupBy = Dimension


@dataclass(frozen=True)
class ReportQuery:
    date_from: date
    date_to: date
    # One dimension or several (title, month); at most one of day, week and month.
    group_by: Dimension | tuple[Dimension, ...] = Dimension.day
    title_ids: tuple[str, ...] = ()
    # Whose titles: the API always passes the caller's scope (accounts.service.studio_scope);
    # jobs and benchmarks report over every studio.
    scope: StudioScope = ALL_STUDIOS
    territories: tuple[str, ...] = ()
    offset: int = 0
    limit: int | None = DEFAULT_PAGE  # None: every group (files)

    @property
    def dimensions(self) -> tuple[Dimension, ...]:
        return self.group_by if isinstance(self.group_by, tuple) else (self.group_by,)


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
    key: str  # the dimensions' values joined by "|" (a title's id, a day, 2026-W07, …)
    label: str  # the same for people: a title's name instead of its id
    tickets_sold: int = 0
    views_started: int = 0
    qualified_views: int = 0
    unique_viewers: int = 0  # sum of daily distinct viewers
    local: list[LocalMoney] = field(default_factory=list)
    converted: dict[str, Converted] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)  # dimension -> value


@dataclass
class Report:
    date_from: date
    date_to: date
    group_by: str  # as asked: "title,month"
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


@dataclass(frozen=True)
class Rate:
    """Units of a reporting currency per unit of a line's currency, from the rates of
    ``rate_date`` (the older of the two currencies' rate days)."""

    value: Decimal
    rate_date: date


@dataclass
class Line:
    """One line of a report file: a group and the currency its tickets were sold in."""

    row: ReportRow
    title_id: str | None
    title: str | None
    territory: str | None
    provider: str | None  # '' on view counts: a view has no payment provider
    period: date | None  # the bucket's first calendar day
    period_first: date | None  # the first and last day of the range it covers
    period_last: date | None
    currency: str  # '' when nothing was sold; "CAD+USD" when a cell sold in both
    rates: dict[str, Rate | None] = field(default_factory=dict)  # one-day lines only
    total: bool = False  # a totals line (with no currency: over every currency)


@dataclass
class Lines:
    """What a file or a chart shows: lines in order, totals per currency and overall."""

    query: ReportQuery
    dimensions: tuple[Dimension, ...]  # as asked, plus currency when the files need it
    reporting_currencies: list[str]
    time_zones: dict[str, str]
    missing_rates: list[dict[str, str]]
    carried_rates: list[dict[str, str]]
    fx_warnings: list[dict[str, str]]
    total_lines: int
    lines: list[Line]
    currency_totals: list[Line]
    total: Line


_COUNT_NAMES = ("tickets_sold", "views_started", "qualified_views", "unique_viewers")
# Converted amounts kept per reporting currency (platform share is net - studio payable).
_CONVERTED = (
    "gross_minor",
    "refunds_minor",
    "chargebacks_minor",
    "fees_minor",
    "net_minor",
    "studio_payable_minor",
)


@dataclass
class _Sums:
    """Running sums of one group, line or cell, as integers until they are shown."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_COUNT_NAMES, 0))
    local: dict[str, dict[str, int]] = field(default_factory=dict)  # currency -> attr -> sum
    sale_currencies: set[str] = field(default_factory=set)
    converted: dict[str, dict[str, int]] = field(default_factory=dict)  # reporting -> attr

    def merge(self, other: _Sums, *, local: bool = True) -> None:
        for name, n in other.counts.items():
            self.counts[name] += n
        if local:
            for currency, money in other.local.items():
                mine = self.local.setdefault(currency, {})
                for attr, v in money.items():
                    mine[attr] = mine.get(attr, 0) + v
            self.sale_currencies |= other.sale_currencies
        for currency, conv in other.converted.items():
            target = self.converted.setdefault(currency, {})
            for attr, v in conv.items():
                target[attr] = target.get(attr, 0) + v

    def currency_label(self) -> str:
        """The currency the cell's tickets were sold in (its fees' when it sold nothing)."""
        found = self.sale_currencies or {c for c, m in self.local.items() if any(m.values())}
        return "+".join(sorted(found))

    def to_row(
        self, key: str, label: str, keys: dict[str, str], currencies: list[str]
    ) -> ReportRow:
        c = self.counts
        row = ReportRow(
            key,
            label,
            tickets_sold=c["tickets_sold"],
            views_started=c["views_started"],
            qualified_views=c["qualified_views"],
            unique_viewers=c["unique_viewers"],
            keys=keys,
        )
        for currency in sorted(self.local):
            money = self.local[currency]
            row.local.append(
                LocalMoney(
                    currency,
                    gross_minor=money.get("gross_minor", 0),
                    refunds_minor=money.get("refunds_minor", 0),
                    chargebacks_minor=money.get("chargebacks_minor", 0),
                    net_sales_minor=money.get("gross_minor", 0)
                    + money.get("refunds_minor", 0)
                    + money.get("chargebacks_minor", 0),
                    fees_minor=money.get("fees_minor", 0),
                )
            )
        for currency in currencies:
            sums = self.converted.get(currency, {})
            if sums.get("unconverted_items"):
                row.converted[currency] = Converted(
                    None, None, None, None, None, None, None, sums["unconverted_items"]
                )
                continue
            conv = Converted(**{attr: sums.get(attr, 0) for attr in _CONVERTED})
            conv.platform_share_minor = (conv.net_minor or 0) - (conv.studio_payable_minor or 0)
            row.converted[currency] = conv
        return row


def check_query(session: Session, query: ReportQuery) -> None:
    if query.date_to < query.date_from:
        raise InvalidInput("date_to is before date_from", code="report_range_invalid")
    if query.date_from < EARLIEST or query.date_to > LATEST:
        # Calendar arithmetic past year 9999 would fail; no box office is that old or new.
        raise InvalidInput(
            f"dates must lie between {EARLIEST} and {LATEST}", code="report_range_invalid"
        )
    if (query.date_to - query.date_from).days >= MAX_DAYS:
        raise InvalidInput(f"ask for at most {MAX_DAYS} days at once", code="report_range_too_long")
    dims = query.dimensions
    if not dims or len(set(dims)) != len(dims):
        raise InvalidInput("give each grouping once", code="report_group_by_invalid")
    if len([d for d in dims if d in TIME_DIMENSIONS]) > 1:
        raise InvalidInput(
            "group by at most one of day, week and month", code="report_group_by_invalid"
        )
    for territory in query.territories:
        if len(territory) != 2 or not territory.isalpha():
            raise InvalidInput(
                f"territory {territory!r} is not ISO 3166-1 alpha-2", code="territory_invalid"
            )
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


@dataclass
class _Grouped:
    dimensions: tuple[Dimension, ...]
    groups: dict[tuple[str, ...], _Sums]  # the dimensions' values (a bucket's first day)
    names: dict[str, str]  # title id -> name
    territories: set[str]  # every territory in the report's rows


_WIDE_LOCAL = (
    ("gross_minor", "gross_minor", True),
    ("refunds_minor", "refunds_minor", True),
    ("chargebacks_minor", "chargebacks_minor", True),
    ("chargeback_reversals_minor", "chargebacks_minor", True),
    ("fees_minor", "fees_minor", False),
)
_WIDE_CONVERTED = (
    ("gross_minor", "gross_minor"),
    ("refunds_minor", "refunds_minor"),
    ("chargebacks_minor", "chargebacks_minor"),
    ("fees_minor", "fees_minor"),
    ("net_minor", "net_minor"),
    ("studio_payable_minor", "studio_payable_minor"),
    ("unconverted", "unconverted_items"),
)


def _add_totals(sums: _Sums, r: Any) -> None:
    """One ``totals_by`` row into running sums (money in the row's currency)."""
    counts = sums.counts
    for name in _COUNT_NAMES:
        value = getattr(r, name)
        if value:
            counts[name] += int(value)
    if not r.currency:
        return
    money = sums.local.get(r.currency)
    if money is None:
        money = sums.local[r.currency] = {}
    for column, attr, sale in _WIDE_LOCAL:
        value = getattr(r, column)
        if value:
            money[attr] = money.get(attr, 0) + int(value)
            if sale:
                sums.sale_currencies.add(r.currency)


def _add_converted(sums: _Sums, r: Any) -> None:
    """One ``converted_by`` row into running sums (per reporting currency)."""
    conv = sums.converted.get(r.reporting_currency)
    if conv is None:
        conv = sums.converted[r.reporting_currency] = {}
    for column, attr in _WIDE_CONVERTED:
        value = getattr(r, column)
        if value:
            conv[attr] = conv.get(attr, 0) + int(value)


_Adder = Callable[[_Sums, Any], None]


def _figures(
    session: Session, query: ReportQuery, names: list[str]
) -> tuple[list[tuple[tuple[Any, ...], _Adder, Any]], set[str]]:
    """The roll-up's sums grouped by ``names`` (of title, territory, provider, day) as
    (their values, how to add the row, the row): the totals by local currency and the
    converted figures by reporting currency, a GROUP BY each (repository.totals_by and
    converted_by). The one place that knows the roll-up's shape. Also the territories
    seen: territory rides along in the totals' grouping (a few more rows, no second scan)
    for the report's time zones."""
    where = _filters(query)
    currencies = list(get_settings().boxoffice_reporting_currencies)
    out: list[tuple[tuple[Any, ...], _Adder, Any]] = []
    territories: set[str] = set()
    along = [] if "territory" in names else ["territory"]
    for r in repository.totals_by(session, [*names, *along, "currency"], where):
        territories.add(r.territory)
        out.append((tuple(getattr(r, n) for n in names), _add_totals, r))
    for r in repository.converted_by(session, names, where, currencies):
        out.append((tuple(getattr(r, n) for n in names), _add_converted, r))
    return out, territories


def _group(session: Session, query: ReportQuery, dims: tuple[Dimension, ...]) -> _Grouped:
    """The report's roll-up rows summed per combination of ``dims``' values: one GROUP BY
    over ``boxoffice_daily``; weeks and months are folded from days here. With the currency
    dimension the rows are read per territory too, and each (title, territory, day) cell is
    put under the currency it sold in (module docstring)."""
    by_currency = Dimension.currency in dims
    time_dim = time_dimension(dims)
    names: list[str] = []
    if Dimension.title in dims:
        names.append("title")
    if Dimension.territory in dims or by_currency:
        names.append("territory")
    if Dimension.provider in dims:
        names.append("provider")
    if time_dim is not None:
        names.append("day")

    def key_of(values: dict[str, Any], currency: str) -> tuple[str, ...]:
        out: list[str] = []
        for dim in dims:
            if dim is Dimension.title:
                out.append(values["title"])
            elif dim is Dimension.territory:
                out.append(values["territory"])
            elif dim is Dimension.provider:
                out.append(values["provider"])
            elif dim is Dimension.currency:
                out.append(currency)
            else:
                out.append(bucket_start(values["day"], dim).isoformat())
        return tuple(out)

    rows, territories = _figures(session, query, names)
    groups: dict[tuple[str, ...], _Sums] = {}
    if by_currency:
        cells: dict[tuple[Any, ...], _Sums] = {}
        for cell_values, add, row in rows:
            add(cells.setdefault(cell_values, _Sums()), row)
        # What a (title, territory) sold in over the whole range: its days with views but no
        # sales belong to that currency's line too.
        undated = [i for i, n in enumerate(names) if n != "day"]
        sold_in: dict[tuple[Any, ...], set[str]] = {}
        for cell_key, cell in cells.items():
            sold_in.setdefault(tuple(cell_key[i] for i in undated), set()).update(
                cell.sale_currencies
            )
        for cell_key, cell in cells.items():
            named = dict(zip(names, cell_key, strict=True))
            pair = sold_in[tuple(cell_key[i] for i in undated)]
            if len(pair) == 1 or not cell.sale_currencies:
                label = "+".join(sorted(pair)) or cell.currency_label()
            else:
                label = "+".join(sorted(cell.sale_currencies))
            groups.setdefault(key_of(named, label), _Sums()).merge(cell, local=False)
            # Local money stays in its own currency: a cell that sold in CAD and USD adds its
            # CAD to the CAD line and its USD to the USD line (fees ride with the sale).
            for currency, money in cell.local.items():
                target = key_of(named, currency if "+" in label else label)
                part = _Sums(local={currency: dict(money)})
                part.sale_currencies = {currency} & cell.sale_currencies
                groups.setdefault(target, _Sums()).merge(part)
    else:
        keys: dict[tuple[Any, ...], tuple[str, ...]] = {}  # a row's values -> its group
        for found, add, row in rows:
            key = keys.get(found)
            if key is None:
                key = keys[found] = key_of(dict(zip(names, found, strict=True)), "")
            sums = groups.get(key)
            if sums is None:
                sums = groups[key] = _Sums()
            add(sums, row)
    _fill(groups, dims, query)
    title_ids = sorted({k[dims.index(Dimension.title)] for k in groups}) if "title" in dims else []
    return _Grouped(dims, groups, repository.title_names(session, title_ids), territories)


def _fill(
    groups: dict[tuple[str, ...], _Sums], dims: tuple[Dimension, ...], query: ReportQuery
) -> None:
    """Every bucket of the range for each combination of the other dimensions seen (for a
    report grouped by time alone, every bucket even when nothing happened)."""
    time_dim = time_dimension(dims)
    if time_dim is None:
        return
    at = dims.index(time_dim)
    others = {k[:at] + k[at + 1 :] for k in groups}
    if not others and all(d in (time_dim, Dimension.currency) for d in dims):
        others = {tuple("" for d in dims if d is not time_dim)}
    for start in buckets(query.date_from, query.date_to, time_dim):
        for rest in others:
            groups.setdefault((*rest[:at], start.isoformat(), *rest[at:]), _Sums())


def _sort_key(
    key: tuple[str, ...], dims: tuple[Dimension, ...], names: dict[str, str]
) -> tuple[Any, ...]:
    out: list[Any] = []
    for dim, value in zip(dims, key, strict=True):
        if dim is Dimension.title:
            out.append((names.get(value, value).lower(), value))
        else:
            # Lines without sales sort after the currencies they sit between.
            out.append((value == "", value))
    return tuple(out)


def _describe(
    key: tuple[str, ...], dims: tuple[Dimension, ...], names: dict[str, str]
) -> tuple[str, str, dict[str, str]]:
    """(key, label, keys) of a group for JSON."""
    keys: dict[str, str] = {}
    labels: list[str] = []
    for dim, value in zip(dims, key, strict=True):
        if dim in TIME_DIMENSIONS:
            value = bucket_label(date.fromisoformat(value), dim)
        keys[dim.value] = value
        labels.append(names.get(value, value) if dim is Dimension.title else value)
    return "|".join(keys.values()), " · ".join(labels), keys


def _common(grouped: _Grouped) -> tuple[list[str], dict[str, str]]:
    settings = get_settings()
    return (
        list(settings.boxoffice_reporting_currencies),
        {t: territory_zone(t, settings) for t in sorted(grouped.territories)},
    )


def build_report(session: Session, query: ReportQuery) -> Report:
    check_query(session, query)
    dims = query.dimensions
    grouped = _group(session, query, dims)
    currencies, zones = _common(grouped)
    totals = _Sums()
    for sums in grouped.groups.values():
        totals.merge(sums)
    ordered = sorted(grouped.groups, key=lambda k: _sort_key(k, dims, grouped.names))
    limit = DEFAULT_PAGE if query.limit is None else query.limit
    rows = []
    for key in ordered[query.offset : query.offset + limit]:
        text, label, keys = _describe(key, dims, grouped.names)
        rows.append(grouped.groups[key].to_row(text, label, keys, currencies))
    settings = get_settings()
    missing, carried = _rates_used(session, query, currencies, settings, totals)
    return Report(
        date_from=query.date_from,
        date_to=query.date_to,
        group_by=",".join(d.value for d in dims),
        reporting_currencies=currencies,
        time_zones=zones,
        missing_rates=missing,
        carried_rates=carried,
        fx_warnings=fx_warnings(session, settings),
        total_groups=len(ordered),
        offset=query.offset,
        limit=limit,
        rows=rows,
        totals=totals.to_row("total", "Total", {}, currencies),
    )


def build_lines(session: Session, query: ReportQuery, *, max_lines: int = MAX_FILE_LINES) -> Lines:
    """The report as file lines: the groups asked for, each split by sale currency, every
    bucket present; one-day lines carry the FX rate of each reporting currency."""
    check_query(session, query)
    dims = query.dimensions
    if Dimension.currency not in dims:
        dims = (*dims, Dimension.currency)
    grouped = _group(session, query, dims)
    currencies, zones = _common(grouped)
    ordered = sorted(grouped.groups, key=lambda k: _sort_key(k, dims, grouped.names))
    page = ordered[query.offset :]
    if query.limit is not None:
        page = page[: query.limit]
    if len(page) > max_lines:
        raise InvalidInput(
            f"the file would have {len(page)} lines (at most {max_lines}): narrow the range "
            "or the grouping, or page with offset and limit",
            code="report_too_large",
        )
    settings = get_settings()
    rates = _Rates(RateBook(session, query.date_from, query.date_to, settings))
    lines = [_line(key, grouped.groups[key], grouped, query, currencies, rates) for key in page]
    by_currency: dict[str, _Sums] = {}
    total, every = _Sums(), _Sums()
    for key in ordered:
        sums = grouped.groups[key]
        total.merge(sums, local=False)
        every.merge(sums)
        by_currency.setdefault(key[dims.index(Dimension.currency)], _Sums()).merge(sums)
    missing, carried = _rates_used(session, query, currencies, settings, every)
    currency_totals = [
        _total_line(by_currency[c], c, currencies)
        for c in sorted(by_currency, key=lambda c: (c == "", c))
        if c
    ]
    return Lines(
        query=query,
        dimensions=dims,
        reporting_currencies=currencies,
        time_zones=zones,
        missing_rates=missing,
        carried_rates=carried,
        fx_warnings=fx_warnings(session, settings),
        total_lines=len(ordered),
        lines=lines,
        currency_totals=currency_totals,
        total=_total_line(total, "", currencies),
    )


def _total_line(sums: _Sums, currency: str, currencies: list[str]) -> Line:
    keys = {"currency": currency} if currency else {}
    row = sums.to_row(f"total|{currency}" if currency else "total", "Total", keys, currencies)
    return Line(row, None, None, None, None, None, None, None, currency, total=True)


class _Rates:
    """Cross rates of a line's currency to a reporting currency, from the report's rate
    book (the carry-over rule included)."""

    def __init__(self, book: RateBook) -> None:
        self.book = book

    def rate(self, day: date, currency: str, reporting: str) -> Rate | None:
        source, target = self.book.rate(day, currency), self.book.rate(day, reporting)
        if source is None or target is None:
            return None
        # Ten significant digits: exact enough to redo any conversion of the line.
        value = _TEN_DIGITS.divide(target.per_eur, source.per_eur)
        return Rate(value, min(source.rate_date, target.rate_date))


def _line(
    key: tuple[str, ...],
    sums: _Sums,
    grouped: _Grouped,
    query: ReportQuery,
    currencies: list[str],
    rates: _Rates,
) -> Line:
    dims = grouped.dimensions
    text, label, keys = _describe(key, dims, grouped.names)
    values = dict(zip(dims, key, strict=True))
    title_id = values.get(Dimension.title)
    time_dim = time_dimension(dims)
    period = first = last = None
    if time_dim is not None:
        period = date.fromisoformat(values[time_dim])
        first, last = bucket_days(period, time_dim, query.date_from, query.date_to)
    line = Line(
        row=sums.to_row(text, label, keys, currencies),
        title_id=title_id,
        title=grouped.names.get(title_id, title_id) if title_id is not None else None,
        territory=values.get(Dimension.territory),
        provider=values.get(Dimension.provider),
        period=period,
        period_first=first,
        period_last=last,
        currency=values[Dimension.currency],
    )
    # A rate only means something for one day in one currency; a week or a month sums
    # amounts converted day by day, each with its own day's rate.
    one_day = first if first is not None and first == last else None
    if one_day is None and query.date_from == query.date_to:
        one_day = query.date_from
    if one_day is not None and line.currency and "+" not in line.currency:
        line.rates = {r: rates.rate(one_day, line.currency, r) for r in currencies}
    return line


def _rates_used(
    session: Session, query: ReportQuery, currencies: list[str], settings: Settings, every: _Sums
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The rates behind the converted figures: (day, currency) pairs converted with an
    earlier day's rate, with that rate's date, for every day of the range up to today and
    every currency the report converts (its local currencies and the reporting ones); and,
    when some amounts were left unconverted, the pairs that had no rate on a day with money."""
    local = set(every.local)
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
    if any(conv.get("unconverted_items") for conv in every.converted.values()):
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


@dataclass
class Series:
    """One line of a chart: a period's converted gross (None: not converted) and views."""

    name: str
    gross_minor: list[int | None]
    qualified_views: list[int]


@dataclass
class ChartData:
    date_from: date
    date_to: date
    period: Dimension  # day, week or month
    periods: list[date]
    currency: str
    series: list[Series]
    missing_rates: int


def chart_data(
    session: Session, query: ReportQuery, currency: str | None = None, max_series: int = 10
) -> ChartData:
    """Per period (the query's day, week or month; days otherwise) and per combination of
    its other dimensions: gross converted to ``currency`` (the first reporting currency by
    default) and qualified views. The ``max_series`` largest by gross are drawn, the rest
    summed as one "others" series."""
    check_query(session, query)
    currencies = list(get_settings().boxoffice_reporting_currencies)
    currency = currency or currencies[0]
    if currency not in currencies:
        raise InvalidInput(
            f"chart currency must be one of {', '.join(currencies)}", code="report_currency_unknown"
        )
    dims = query.dimensions
    period = time_dimension(dims) or Dimension.day
    if period not in dims:
        dims = (*dims, period)
    grouped = _group(session, query, dims)
    at = dims.index(period)
    periods = buckets(query.date_from, query.date_to, period)
    index = {p.isoformat(): i for i, p in enumerate(periods)}
    series: dict[tuple[str, ...], Series] = {}
    for key, sums in grouped.groups.items():
        rest = key[:at] + key[at + 1 :]
        if rest not in series:
            name = _describe(rest, dims[:at] + dims[at + 1 :], grouped.names)[1]
            series[rest] = Series(name or "All titles", [0] * len(periods), [0] * len(periods))
        s, i = series[rest], index[key[at]]
        conv = sums.converted.get(currency, {})
        gross = s.gross_minor[i]
        s.gross_minor[i] = (
            None
            if conv.get("unconverted_items") or gross is None
            else gross + conv.get("gross_minor", 0)
        )
        s.qualified_views[i] += sums.counts["qualified_views"]
    ranked = sorted(series.values(), key=lambda s: (-sum(g or 0 for g in s.gross_minor), s.name))
    shown = ranked[:max_series]
    if len(ranked) > max_series:
        shown.append(_sum_series(f"{len(ranked) - max_series} others", ranked[max_series:]))
    missing = sum(1 for s in shown for g in s.gross_minor if g is None)
    return ChartData(query.date_from, query.date_to, period, periods, currency, shown, missing)


def _sum_series(name: str, many: Iterable[Series]) -> Series:
    items = list(many)
    gross: list[int | None] = []
    for i in range(len(items[0].gross_minor)):
        values = [s.gross_minor[i] for s in items]
        gross.append(None if any(v is None for v in values) else sum(v or 0 for v in values))
    views = [sum(s.qualified_views[i] for s in items) for i in range(len(items[0].qualified_views))]
    return Series(name, gross, views)


def all_dimensions() -> Sequence[str]:
    return [d.value for d in Dimension]
