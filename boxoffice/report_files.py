"""Report files finance opens in a spreadsheet: CSV (UTF-8 with a byte-order mark, so Excel
reads Chinese titles right) and XLSX, both in tidy long format from the same lines
(boxoffice.reports.build_lines): one line per group and sale currency, one column per
figure, amounts in major units, dates as dates, totals per currency and overall below.

In the XLSX each amount is a number with its currency's number format (decimals from
core/money.py: ``1,000 "JPY"``, ``12.99 "USD"``, ``1.250 "KWD"``), days are dates, the
header row and the dimension columns are frozen, columns are sized to their contents, and a
Notes sheet names the range, the time zones, the FX rule and every missing rate.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, cast
from unicodedata import east_asian_width

from boxoffice.grouping import Dimension, bucket_label
from boxoffice.reports import Line, Lines, LocalMoney
from core.money import display_digits, to_major

BOM = "\ufeff"
DATE_FORMAT = "yyyy-mm-dd"
MONTH_FORMAT = "mmm yyyy"
COUNT_FORMAT = "#,##0"
RATE_FORMAT = "0.000000"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True)
class Cell:
    value: str | int | Decimal | date | None
    number_format: str | None = None


Column = tuple[str, Callable[[Line], Cell]]


def money_format(currency: str) -> str:
    """The spreadsheet number format of an amount in ``currency`` (its display decimals)."""
    digits = display_digits(currency)
    return "#,##0" + ("." + "0" * digits if digits else "") + f' "{currency}"'


def _money(minor: int | None, currency: str) -> Cell:
    if minor is None or not currency or "+" in currency:
        return Cell(None)
    return Cell(to_major(minor, currency), money_format(currency))


def _local(line: Line) -> LocalMoney | None:
    return next((m for m in line.row.local if m.currency == line.currency), None)


def _fees(line: Line) -> tuple[int | None, str]:
    charged = [(m.currency, m.fees_minor) for m in line.row.local if m.fees_minor]
    if not charged:
        return 0, line.currency if "+" not in line.currency else ""
    if len(charged) == 1:
        return charged[0][1], charged[0][0]
    return None, "+".join(sorted(c for c, _ in charged))


def _local_column(header: str, attr: str) -> Column:
    def cell(line: Line) -> Cell:
        money = _local(line)
        if not line.currency:
            # Amounts in several currencies do not add up; a period without sales is 0.
            return Cell(None if line.total else 0)
        return _money(getattr(money, attr) if money else 0, line.currency)

    return header, cell


def _fee_amount(line: Line) -> Cell:
    if line.total and not line.currency:
        return Cell(None)
    amount, currency = _fees(line)
    return _money(amount, currency) if currency else Cell(amount)


def _converted_column(header: str, reporting: str, attr: str) -> Column:
    return header, lambda line: _money(getattr(line.row.converted[reporting], attr), reporting)


def _rate_columns(reporting: str) -> list[Column]:
    def rate(line: Line) -> Cell:
        found = line.rates.get(reporting)
        return Cell(found.value, RATE_FORMAT) if found else Cell(None)

    def rate_date(line: Line) -> Cell:
        found = line.rates.get(reporting)
        return Cell(found.rate_date, DATE_FORMAT) if found else Cell(None)

    return [(f"FX rate to {reporting}", rate), (f"FX rate date ({reporting})", rate_date)]


def _dimension_columns(dim: Dimension) -> list[Column]:
    if dim is Dimension.title:
        return [("Title", lambda ln: Cell(ln.title)), ("Title ID", lambda ln: Cell(ln.title_id))]
    if dim is Dimension.territory:
        return [("Territory", lambda ln: Cell(ln.territory))]
    if dim is Dimension.provider:
        return [("Provider", lambda ln: Cell(ln.provider or None))]
    if dim is Dimension.currency:
        return [("Currency", lambda ln: Cell(ln.currency or None))]
    if dim is Dimension.day:
        return [("Day", lambda ln: Cell(ln.period, DATE_FORMAT))]
    if dim is Dimension.week:
        return [
            ("Week", lambda ln: Cell(bucket_label(ln.period, dim) if ln.period else None)),
            ("Week starts", lambda ln: Cell(ln.period, DATE_FORMAT)),
        ]
    return [("Month", lambda ln: Cell(ln.period, MONTH_FORMAT))]


def columns(lines: Lines) -> tuple[list[Column], int]:
    """Every column of the file, and how many of them (from the left) name the group."""
    cols: list[Column] = []
    for dim in lines.dimensions:
        cols += _dimension_columns(dim)
    keys = len(cols)
    cols += [
        ("Tickets sold", lambda ln: Cell(ln.row.tickets_sold, COUNT_FORMAT)),
        ("Views started", lambda ln: Cell(ln.row.views_started, COUNT_FORMAT)),
        ("Qualified views", lambda ln: Cell(ln.row.qualified_views, COUNT_FORMAT)),
        ("Unique viewers", lambda ln: Cell(ln.row.unique_viewers, COUNT_FORMAT)),
        _local_column("Gross", "gross_minor"),
        _local_column("Refunds", "refunds_minor"),
        _local_column("Chargebacks", "chargebacks_minor"),
        _local_column("Net sales", "net_sales_minor"),
        ("Fees", _fee_amount),
        ("Fee currency", lambda ln: Cell(_fees(ln)[1] or None)),
    ]
    for r in lines.reporting_currencies:
        cols += _rate_columns(r)
        cols += [
            _converted_column(f"Gross ({r})", r, "gross_minor"),
            _converted_column(f"Refunds ({r})", r, "refunds_minor"),
            _converted_column(f"Chargebacks ({r})", r, "chargebacks_minor"),
            _converted_column(f"Fees ({r})", r, "fees_minor"),
            _converted_column(f"Net ({r})", r, "net_minor"),
            _converted_column(f"Studio payable ({r})", r, "studio_payable_minor"),
            _converted_column(f"Platform share ({r})", r, "platform_share_minor"),
        ]
    return cols, keys


def _totals(lines: Lines, cols: list[Column]) -> list[list[Cell]]:
    """Totals per sale currency, then the total of every line (counts and converted
    amounts; local amounts cannot be added across currencies). "Total" is written in the
    first column that does not hold the currency."""
    headers = [h for h, _ in cols]
    marker = next((i for i, h in enumerate(headers) if h != "Currency"), 0)
    only_currency = lines.dimensions == (Dimension.currency,)
    out: list[list[Cell]] = []
    for line in [] if only_currency else lines.currency_totals:
        cells = [get(line) for _, get in cols]
        cells[marker] = Cell(f"Total {line.currency}")
        out.append(cells)
    cells = [get(lines.total) for _, get in cols]
    cells[marker] = Cell("Total")
    out.append(cells)
    return out


def _plain(cell: Cell) -> str:
    if cell.value is None:
        return ""
    if isinstance(cell.value, date):
        return cell.value.isoformat()
    return str(cell.value)


def to_csv(lines: Lines) -> bytes:
    """UTF-8 with a byte-order mark: Excel then opens accented and Chinese titles as written
    (without it, it guesses the system's code page)."""
    cols, _ = columns(lines)
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out)
    writer.writerow([h for h, _ in cols])
    for line in lines.lines:
        writer.writerow([_plain(get(line)) for _, get in cols])
    for cells in _totals(lines, cols):
        writer.writerow([_plain(c) for c in cells])
    return out.getvalue().encode("utf-8")


def _width(cell: Cell) -> int:
    if cell.value is None:
        return 0
    if isinstance(cell.value, date):
        return 10
    if isinstance(cell.value, (int, Decimal)):
        return len(f"{cell.value:,}") + 5  # grouping, currency code
    # East Asian wide characters take two columns (a Chinese title is twice its length).
    return sum(2 if east_asian_width(ch) in "WF" else 1 for ch in cell.value)


def to_xlsx(lines: Lines) -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    cols, keys = columns(lines)
    body = [[get(line) for _, get in cols] for line in lines.lines]
    totals = _totals(lines, cols)
    # Write-only mode streams rows (a year by title is tens of thousands of lines); widths,
    # panes and filters must be set before the first row.
    book = Workbook(write_only=True)
    sheet = book.create_sheet("Box office")
    for i, (header, _) in enumerate(cols):
        widest = max([len(header), *(_width(r[i]) for r in [*body, *totals])])
        sheet.column_dimensions[get_column_letter(i + 1)].width = min(max(widest + 2, 9), 48)
    sheet.freeze_panes = f"{get_column_letter(keys + 1)}2"
    last_col = get_column_letter(len(cols))
    sheet.auto_filter.ref = f"A1:{last_col}{len(body) + 1}"
    bold = Font(bold=True)
    head_fill = PatternFill("solid", fgColor="DDE4EE")

    def row_of(cells: list[Cell], font: Font | None = None) -> list[Any]:
        out = []
        for c in cells:
            # openpyxl stores Decimal and date as they are (its stubs are narrower).
            wc = WriteOnlyCell(sheet, value=cast(Any, c.value))
            if c.number_format:
                wc.number_format = c.number_format
            if font is not None:
                wc.font = font
            out.append(wc)
        return out

    header_cells = []
    for header, _ in cols:
        wc = WriteOnlyCell(sheet, value=header)
        wc.font, wc.fill = bold, head_fill
        wc.alignment = Alignment(wrap_text=True, vertical="top")
        header_cells.append(wc)
    sheet.append(header_cells)
    for cells in body:
        sheet.append(row_of(cells))
    sheet.append([])  # totals stand apart, outside the filter, so sorting leaves them below
    for cells in totals:
        sheet.append(row_of(cells, bold))
    _notes(book.create_sheet("Notes"), lines)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def notes(lines: Lines) -> list[list[str]]:
    q = lines.query
    rows = [
        ["Range", f"{q.date_from.isoformat()} to {q.date_to.isoformat()} (local days, inclusive)"],
        ["Grouped by", ", ".join(d.value for d in q.dimensions)],
        ["Lines", f"{len(lines.lines)} of {lines.total_lines} (offset {q.offset})"],
        [
            "Amounts",
            "major units of the line's currency (local) or of the reporting currency named "
            "in the column (converted); each day is converted with that day's rates and "
            "rounded once",
        ],
        [
            "FX rate",
            "units of the reporting currency per unit of the line's currency; given for lines "
            "of one day (a week or month is converted day by day)",
        ],
        ["Empty periods", "every period of the range is listed, with zeros when nothing sold"],
    ]
    rows += [["Time zone", t, z] for t, z in lines.time_zones.items()]
    rows += [["Missing FX rate", m["day"], m["currency"]] for m in lines.missing_rates]
    rows += [
        ["FX rate carried over", c["day"], c["currency"], c["rate_date"]]
        for c in lines.carried_rates
    ]
    rows += [["FX warning", w["code"], w["detail"]] for w in lines.fx_warnings]
    return rows


def _notes(sheet: Any, lines: Lines) -> None:
    sheet.column_dimensions["A"].width = 16
    sheet.column_dimensions["B"].width = 100
    sheet.column_dimensions["C"].width = 20
    for row in notes(lines):
        sheet.append(row)
