"""Box-office routes: finance (all titles, FX, revenue shares, roll-ups, reconciliation)
and studios (their own titles only). Definitions: docs/boxoffice.md."""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from api.boxoffice_schemas import (
    FxLoadRead,
    ReportFormat,
    RevenueShareRead,
    RevenueShareWrite,
    RollupRead,
)
from api.contract import problems
from api.deps import CallerScope, DbSession, FinanceUser, ReadDb, StudioUser
from boxoffice import charts, grouping, reconciliation, report_files, reports, service
from core.errors import InvalidInput
from core.scope import StudioScope

finance = APIRouter(prefix="/v1/finance", tags=["finance"])
studio = APIRouter(prefix="/v1/studio/boxoffice", tags=["studio"])

MAX_FX_BYTES = 10 * 1024 * 1024


DateFrom = Annotated[date, Query(description="First local day, inclusive")]
DateTo = Annotated[date, Query(description="Last local day, inclusive")]
GroupByQ = Annotated[
    str,
    Query(
        max_length=100,
        description="Comma-separated, any combination of title, territory, provider, "
        "currency and one of day, week (ISO) or month, e.g. title,month",
    ),
]
TitleIds = Annotated[
    list[str] | None,
    Query(alias="title_id", max_length=50, description="Repeat for several"),
]
Territories = Annotated[
    list[str] | None,
    Query(alias="territory", max_length=50, description="ISO 3166-1 alpha-2; repeat"),
]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
Limit = Annotated[
    int | None,
    Query(ge=1, le=reports.MAX_FILE_LINES, description="Groups per page (JSON: 100); files: all"),
]
FormatQ = Annotated[ReportFormat, Query(description="json, csv (UTF-8 with BOM) or xlsx")]
ChartQ = Annotated[
    charts.ChartFormat | None,
    Query(description="svg or png: a chart of the report instead of its rows"),
]
ChartCurrency = Annotated[
    str | None,
    Query(
        min_length=3,
        max_length=3,
        description="Reporting currency of a chart's gross (default: the first one)",
    ),
]


def _query(
    date_from: date,
    date_to: date,
    group_by: str,
    title_ids: list[str] | None,
    territories: list[str] | None,
    scope: StudioScope,
    offset: int,
    limit: int | None,
) -> reports.ReportQuery:
    return reports.ReportQuery(
        date_from=date_from,
        date_to=date_to,
        group_by=grouping.parse_group_by(group_by),
        title_ids=tuple(title_ids or ()),
        territories=tuple(t.upper() for t in territories or ()),
        scope=scope,
        offset=offset,
        limit=limit,
    )


def _render(
    session: Session,
    query: reports.ReportQuery,
    fmt: ReportFormat,
    chart: charts.ChartFormat | None,
    currency: str | None,
) -> Response:
    name = f"boxoffice-{query.date_from}-{query.date_to}-" + "-".join(
        d.value for d in query.dimensions
    )
    if chart is not None:
        if fmt is not ReportFormat.json:
            raise InvalidInput(
                "ask for a chart or a file format, not both", code="report_format_conflict"
            )
        image = charts.render(reports.chart_data(session, query, currency), chart)
        return Response(image, media_type=charts.MEDIA_TYPES[chart])
    if currency is not None:
        raise InvalidInput("chart_currency applies to charts only", code="report_format_conflict")
    if fmt is ReportFormat.csv:
        return Response(
            report_files.to_csv(reports.build_lines(session, query)),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    if fmt is ReportFormat.xlsx:
        return Response(
            report_files.to_xlsx(reports.build_lines(session, query)),
            media_type=report_files.XLSX_MEDIA_TYPE,
            headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
        )
    return JSONResponse(_jsonable(reports.build_report(session, query).as_dict()))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value


_REPORT_PROBLEMS = (
    "Invalid input: report_range_invalid (date_to before date_from), report_range_too_long "
    f"(over {reports.MAX_DAYS} days), report_group_by_unknown, report_group_by_invalid "
    "(repeated, or two of day/week/month), report_group_by_unavailable (store: use provider), "
    "report_format_conflict (chart with a file format), report_currency_unknown, "
    "report_too_large (a file over the line limit), territory_invalid, invalid_input "
    "(a malformed date or number)"
)
_REPORT_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The report (JSON); a CSV or XLSX file with the same groups split by "
        "sale currency, and totals; or a chart (SVG, PNG)",
        "content": {
            # Rows depend on group_by; docs/boxoffice.md lists the columns.
            "application/json": {
                "schema": {"type": "object", "description": "rows, totals and the query"}
            },
            "text/csv": {},
            report_files.XLSX_MEDIA_TYPE: {},
            "image/svg+xml": {},
            "image/png": {},
        },
    },
}
_CHART_DOC: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/svg+xml": {}}, "description": "The chart (SVG)"},
}


@finance.get(
    "/boxoffice/report",
    operation_id="reports_boxoffice_get",
    summary="Box-office report over all titles (JSON, CSV, XLSX or a chart)",
    responses={
        **problems(
            "report_range_invalid",
            "report_range_too_long",
            "report_group_by_unknown",
            "report_group_by_invalid",
            "report_group_by_unavailable",
            "report_format_conflict",
            "report_currency_unknown",
            "report_too_large",
            "territory_invalid",
            "title_not_found",
        ),
        **_REPORT_DOC,
    },
)
def finance_report(
    session: ReadDb,
    _: FinanceUser,
    scope: CallerScope,
    date_from: DateFrom,
    date_to: DateTo,
    group_by: GroupByQ = "day",
    title_ids: TitleIds = None,
    territories: Territories = None,
    studio_id: Annotated[
        str | None, Query(max_length=64, description="Only this studio's titles")
    ] = None,
    format: FormatQ = ReportFormat.json,
    chart: ChartQ = None,
    chart_currency: ChartCurrency = None,
    offset: Offset = 0,
    limit: Limit = None,
) -> Response:
    """Gross, refunds, net and qualified views per title, territory and day, converted at the day's FX rates; JSON or CSV."""
    scope = scope.narrowed(studio_id)
    query = _query(date_from, date_to, group_by, title_ids, territories, scope, offset, limit)
    return _render(session, query, format, chart, chart_currency)


def _chart_grouping(date_from: date, date_to: date) -> str:
    """Per title by day up to a quarter; by week beyond (365 daily points per title are a
    blur at chart width). ``chart=`` on the report routes takes any grouping."""
    return "title,day" if (date_to - date_from).days < 92 else "title,week"


@finance.get(
    "/boxoffice/chart.svg",
    operation_id="reports_boxoffice_chart_svg_get",
    summary="Chart of daily gross and qualified views per title (SVG)",
    response_class=Response,
    responses={
        **problems(
            "report_range_invalid",
            "report_range_too_long",
            "report_group_by_unknown",
            "report_group_by_invalid",
            "report_group_by_unavailable",
            "report_format_conflict",
            "report_currency_unknown",
            "report_too_large",
            "territory_invalid",
            "title_not_found",
        ),
        **_CHART_DOC,
    },
)
def finance_chart(
    session: ReadDb,
    _: FinanceUser,
    scope: CallerScope,
    date_from: DateFrom,
    date_to: DateTo,
    title_ids: TitleIds = None,
    territories: Territories = None,
    studio_id: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """The same figures as the report, drawn as an SVG chart."""
    scope = scope.narrowed(studio_id)
    grouped = _chart_grouping(date_from, date_to)
    query = _query(date_from, date_to, grouped, title_ids, territories, scope, 0, None)
    return _render(session, query, ReportFormat.json, charts.ChartFormat.svg, None)


@studio.get(
    "/report",
    operation_id="studio_reports_boxoffice_get",
    summary="Box-office report over my studio's titles (JSON, CSV, XLSX or a chart)",
    responses={
        **problems(
            "report_range_invalid",
            "report_range_too_long",
            "report_group_by_unknown",
            "report_group_by_invalid",
            "report_group_by_unavailable",
            "report_format_conflict",
            "report_currency_unknown",
            "report_too_large",
            "territory_invalid",
            "title_not_found",
        ),
        **_REPORT_DOC,
    },
)
def studio_report(
    session: ReadDb,
    _: StudioUser,
    scope: CallerScope,
    date_from: DateFrom,
    date_to: DateTo,
    group_by: GroupByQ = "day",
    title_ids: TitleIds = None,
    territories: Territories = None,
    format: FormatQ = ReportFormat.json,
    chart: ChartQ = None,
    chart_currency: ChartCurrency = None,
    offset: Offset = 0,
    limit: Limit = None,
) -> Response:
    """The box-office report limited to your studio's titles, with your revenue share."""
    query = _query(date_from, date_to, group_by, title_ids, territories, scope, offset, limit)
    return _render(session, query, format, chart, chart_currency)


@studio.get(
    "/chart.svg",
    operation_id="studio_reports_boxoffice_chart_svg_get",
    summary="Chart of my titles' daily gross and qualified views (SVG)",
    response_class=Response,
    responses={
        **problems(
            "report_range_invalid",
            "report_range_too_long",
            "report_group_by_unknown",
            "report_group_by_invalid",
            "report_group_by_unavailable",
            "report_format_conflict",
            "report_currency_unknown",
            "report_too_large",
            "territory_invalid",
            "title_not_found",
        ),
        **_CHART_DOC,
    },
)
def studio_chart(
    session: ReadDb,
    _: StudioUser,
    scope: CallerScope,
    date_from: DateFrom,
    date_to: DateTo,
    title_ids: TitleIds = None,
    territories: Territories = None,
) -> Response:
    """Your titles' figures drawn as an SVG chart."""
    grouped = _chart_grouping(date_from, date_to)
    query = _query(date_from, date_to, grouped, title_ids, territories, scope, 0, None)
    return _render(session, query, ReportFormat.json, charts.ChartFormat.svg, None)


@finance.post(
    "/fx-rates",
    summary="Load daily FX reference rates from an ECB-style CSV (request body, text/csv)",
    status_code=201,
    response_model=FxLoadRead,
    openapi_extra={
        "requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}
    },
    responses=problems("fx_csv_invalid", "fx_csv_empty", "fx_csv_too_large"),
)
async def load_fx_rates(request: Request, session: DbSession, principal: FinanceUser) -> FxLoadRead:
    """The body is the CSV itself (`text/csv`); loading a day again replaces its rates."""
    body = await request.body()
    if len(body) > MAX_FX_BYTES:
        raise InvalidInput("the file is larger than 10 MB; split it", code="fx_csv_too_large")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("the file must be UTF-8 text", code="fx_csv_invalid") from None
    loaded = service.load_rates(session, text, source=f"api:{principal.user_id}")
    return FxLoadRead(**dataclasses.asdict(loaded))


@finance.get("/fx-rates/{day}", summary="FX rates of one day (units per EUR)")
def fx_rates(session: ReadDb, _: FinanceUser, day: date) -> dict[str, str]:
    """The rates stored for that day, in units of each currency per EUR."""
    return service.rates_on(session, day)


@finance.put(
    "/revenue-shares/{title_id}",
    summary="Set a title's revenue share (optionally for one territory)",
    response_model=RevenueShareRead,
    responses=problems("revenue_share_invalid", "territory_invalid", "title_not_found"),
)
def set_revenue_share(
    session: DbSession, principal: FinanceUser, title_id: str, body: RevenueShareWrite
) -> RevenueShareRead:
    """The studio's share of net revenue in basis points, for all territories or one."""
    row = service.set_revenue_share(
        session,
        title_id=title_id,
        territory=body.territory,
        studio_share_percent=body.studio_share_percent,
        by=principal.user_id,
    )
    return RevenueShareRead(
        title_id=row.title_id,
        territory=row.territory or None,
        studio_share_percent=Decimal(row.studio_share_bps) / 100,
    )


@finance.post("/boxoffice/rollups/{day}", summary="Roll up one day now", response_model=RollupRead)
def rollup_day(session: DbSession, _: FinanceUser, day: date) -> RollupRead:
    """Normally done by the nightly job; rolling a day up again gives the same rows."""
    return RollupRead(day=day, rows=service.rollup_day(session, day))


@finance.get(
    "/reconciliation/{day}",
    summary="Ledger vs the provider's balance transactions for a UTC day",
    responses=problems((422, "payment_provider_not_configured"), "reconciliation_provider_error"),
)
def reconcile(
    session: ReadDb,
    _: FinanceUser,
    day: date,
    provider: Annotated[str | None, Query(pattern="^(stripe|sandbox)$")] = None,
) -> dict[str, Any]:
    """Compares the ledger rows of the day with the provider's balance transactions and lists what differs."""
    result = reconciliation.reconcile(session, day, provider)
    return _jsonable(dataclasses.asdict(result))  # type: ignore[no-any-return]
