"""Box-office routes: finance (all titles, FX, revenue shares, roll-ups, reconciliation)
and studios (their own titles only). Definitions: docs/boxoffice.md."""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.contract import problems
from api.deps import CallerScope, DbSession, FinanceUser, ReadDb, StudioUser
from boxoffice import reconciliation, reports, service
from core.errors import InvalidInput
from core.scope import StudioScope

finance = APIRouter(prefix="/v1/finance", tags=["finance"])
studio = APIRouter(prefix="/v1/studio/boxoffice", tags=["studio"])

MAX_FX_BYTES = 10 * 1024 * 1024


class ReportFormat(StrEnum):
    json = "json"
    csv = "csv"
    xlsx = "xlsx"


DateFrom = Annotated[date, Query(description="First local day, inclusive")]
DateTo = Annotated[date, Query(description="Last local day, inclusive")]
GroupByQ = Annotated[
    reports.GroupBy, Query(description="day, week (ISO), month, title or territory")
]
TitleIds = Annotated[list[str] | None, Query(alias="title_id", description="Repeat for several")]
Territories = Annotated[
    list[str] | None, Query(alias="territory", description="ISO 3166-1 alpha-2; repeat")
]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
Limit = Annotated[int, Query(ge=1, le=1000)]
FormatQ = Annotated[ReportFormat, Query(description="json, csv or xlsx")]


def _query(
    date_from: date,
    date_to: date,
    group_by: reports.GroupBy,
    title_ids: list[str] | None,
    territories: list[str] | None,
    scope: StudioScope,
    offset: int,
    limit: int,
) -> reports.ReportQuery:
    return reports.ReportQuery(
        date_from=date_from,
        date_to=date_to,
        group_by=group_by,
        title_ids=tuple(title_ids or ()),
        territories=tuple(t.upper() for t in territories or ()),
        scope=scope,
        offset=offset,
        limit=limit,
    )


def _render(report: reports.Report, fmt: ReportFormat) -> Response:
    name = f"boxoffice-{report.date_from}-{report.date_to}-{report.group_by.value}"
    if fmt is ReportFormat.csv:
        return Response(
            reports.to_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    if fmt is ReportFormat.xlsx:
        return Response(
            reports.to_xlsx(report),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
        )
    return JSONResponse(_jsonable(report.as_dict()))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value


_REPORT_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The report (JSON), or a CSV/XLSX file with the same rows and totals",
        "content": {
            # Rows depend on group_by; docs/boxoffice.md lists the columns.
            "application/json": {
                "schema": {"type": "object", "description": "rows, totals and the query"}
            },
            "text/csv": {},
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {},
        },
    }
}


@finance.get(
    "/boxoffice/report",
    summary="Box-office report over all titles",
    responses={
        **problems("report_range_invalid", "report_range_too_long", "title_not_found"),
        **_REPORT_DOC,
    },
)
def finance_report(
    session: ReadDb,
    _: FinanceUser,
    scope: CallerScope,
    date_from: DateFrom,
    date_to: DateTo,
    group_by: GroupByQ = reports.GroupBy.day,
    title_ids: TitleIds = None,
    territories: Territories = None,
    studio_id: Annotated[str | None, Query(description="Only this studio's titles")] = None,
    format: FormatQ = ReportFormat.json,
    offset: Offset = 0,
    limit: Limit = 100,
) -> Response:
    """Gross, refunds, net and qualified views per title, territory and day, converted at the day's FX rates; JSON or CSV."""
    scope = scope.narrowed(studio_id)
    query = _query(date_from, date_to, group_by, title_ids, territories, scope, offset, limit)
    return _render(reports.build_report(session, query), format)


@finance.get(
    "/boxoffice/chart.svg",
    summary="Chart of daily gross and qualified views per title (SVG)",
    response_class=Response,
    responses={
        **problems("report_range_invalid", "report_range_too_long", "title_not_found"),
        200: {"content": {"image/svg+xml": {}}},
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
    studio_id: Annotated[str | None, Query()] = None,
) -> Response:
    """The same figures as the report, drawn as an SVG chart."""
    scope = scope.narrowed(studio_id)
    query = _query(date_from, date_to, reports.GroupBy.day, title_ids, territories, scope, 0, 1)
    return Response(reports.chart_svg(session, query), media_type="image/svg+xml")


@studio.get(
    "/report",
    summary="Box-office report over my studio's titles",
    responses={
        **problems("report_range_invalid", "report_range_too_long", "title_not_found"),
        **_REPORT_DOC,
    },
)
def studio_report(
    session: ReadDb,
    _: StudioUser,
    scope: CallerScope,
    date_from: DateFrom,
    date_to: DateTo,
    group_by: GroupByQ = reports.GroupBy.day,
    title_ids: TitleIds = None,
    territories: Territories = None,
    format: FormatQ = ReportFormat.json,
    offset: Offset = 0,
    limit: Limit = 100,
) -> Response:
    """The box-office report limited to your studio's titles, with your revenue share."""
    query = _query(date_from, date_to, group_by, title_ids, territories, scope, offset, limit)
    return _render(reports.build_report(session, query), format)


@studio.get(
    "/chart.svg",
    summary="Chart of my titles' daily gross and qualified views (SVG)",
    response_class=Response,
    responses={
        **problems("report_range_invalid", "report_range_too_long", "title_not_found"),
        200: {"content": {"image/svg+xml": {}}},
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
    query = _query(date_from, date_to, reports.GroupBy.day, title_ids, territories, scope, 0, 1)
    return Response(reports.chart_svg(session, query), media_type="image/svg+xml")


class FxLoadRead(BaseModel):
    rates: int
    first_day: date | None
    last_day: date | None
    currencies: list[str]


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


class RevenueShareWrite(BaseModel):
    studio_share_percent: Decimal = Field(
        ge=0, le=100, description="Studio's share of net, e.g. 70 or 62.5"
    )
    territory: str | None = Field(default=None, description="Only for this territory; omit for all")


class RevenueShareRead(BaseModel):
    title_id: str
    territory: str | None
    studio_share_percent: Decimal


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


class RollupRead(BaseModel):
    day: date
    rows: int


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
