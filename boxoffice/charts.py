"""Box-office charts drawn with matplotlib (Agg, no display): gross in a reporting currency
and qualified views per period, one series per group, in SVG or PNG.

A range of one period is drawn as labelled bars (a line through one point shows nothing);
longer ranges as lines over a date axis whose ticks matplotlib picks for the span (days for
a week, months for a year). Periods whose gross has no FX rate are gaps, never zero.
"""

from __future__ import annotations

import io
import math
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from boxoffice.reports import ChartData
from core.money import display_digits, to_major

if TYPE_CHECKING:
    from matplotlib.axes import Axes


class ChartFormat(StrEnum):
    svg = "svg"
    png = "png"


MEDIA_TYPES = {ChartFormat.svg: "image/svg+xml", ChartFormat.png: "image/png"}
_PERIOD_WORD = {"day": "daily", "week": "weekly", "month": "monthly"}


def render(data: ChartData, fmt: ChartFormat) -> bytes:
    # Imported here: matplotlib takes about a second to import, which only chart requests
    # should pay (not every API and worker process at start).
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # Text stays text in the SVG (searchable, selectable, any script the viewer's fonts
    # cover) and ids are stable from run to run.
    matplotlib.rcParams["svg.fonttype"] = "none"
    matplotlib.rcParams["svg.hashsalt"] = "pocketcinema"
    matplotlib.rcParams["font.family"] = _font_families()

    word = _PERIOD_WORD[data.period.value]
    height = 7.5 if len(data.periods) > 1 else 4.0 + 0.5 * max(len(data.series), 1)
    figure = Figure(figsize=(11, height), layout="constrained")
    FigureCanvasAgg(figure)
    gross_ax, views_ax = figure.subplots(2, 1, sharex=len(data.periods) > 1)
    if len(data.periods) == 1:
        _bars(gross_ax, views_ax, data)
    else:
        _lines(gross_ax, views_ax, data)
    gross_ax.set_title(f"Gross, {word} ({data.currency})", loc="left")
    views_ax.set_title(f"Qualified views, {word}", loc="left")
    span = (
        data.date_from.isoformat()
        if data.date_from == data.date_to
        else f"{data.date_from.isoformat()} to {data.date_to.isoformat()}"
    )
    figure.suptitle(f"Box office, {span}", fontsize=14)
    if data.missing_rates:
        figure.text(
            0.01,
            0.003,
            f"{data.missing_rates} period(s) without an FX rate are left out of the gross",
            fontsize=8,
        )
    out = io.BytesIO()
    figure.savefig(out, format=fmt.value, dpi=100, metadata=_metadata(fmt))
    return out.getvalue()


# Where ./run ops-setup unpacks a CJK font, and where Debian (and the Docker image) install it.
CJK_FONTS = (
    Path(__file__).resolve().parents[1]
    / ".cache/fonts/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
)


@cache
def _font_families() -> list[str]:
    """DejaVu Sans, then a CJK font when one is installed: matplotlib falls back glyph by
    glyph along the list, so Latin text keeps its look and Chinese titles are drawn."""
    from matplotlib import font_manager

    for path in CJK_FONTS:
        if path.is_file():
            font_manager.fontManager.addfont(str(path))
            return ["DejaVu Sans", font_manager.FontProperties(fname=str(path)).get_name()]
    return ["DejaVu Sans"]


def _metadata(fmt: ChartFormat) -> dict[str, str | None]:
    # No creation date: the same report gives the same file.
    if fmt is ChartFormat.svg:
        return {"Date": None, "Creator": "Pocket Cinema"}
    return {"Software": "Pocket Cinema"}


def _money_axis(ax: Axes, currency: str) -> None:
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _tick(v, currency)))
    ax.set_ylabel(f"Gross ({currency})")


def _tick(value: float, currency: str) -> str:
    """Whole amounts without decimals ("1,500 USD"); small steps with the currency's own."""
    digits = 0 if value == round(value) else display_digits(currency)
    return f"{value:,.{digits}f} {currency}"


def _major(values: list[int | None], currency: str) -> list[float]:
    return [math.nan if v is None else float(to_major(v, currency)) for v in values]


def _lines(gross_ax: Axes, views_ax: Axes, data: ChartData) -> None:
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
    from matplotlib.ticker import MaxNLocator

    marker = "o" if len(data.periods) <= 45 else None
    x = date2num(data.periods)  # type: ignore[no-untyped-call]
    for s in data.series:
        gross_ax.plot(x, _major(s.gross_minor, data.currency), marker=marker, label=s.name)
        views_ax.plot(x, s.qualified_views, marker=marker, label=s.name)
    _money_axis(gross_ax, data.currency)
    views_ax.set_ylabel("Qualified views")
    locator = AutoDateLocator(minticks=3, maxticks=12)  # type: ignore[no-untyped-call]
    for ax in (gross_ax, views_ax):
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
    views_ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    views_ax.set_xlabel(f"{data.period.value.capitalize()} (local calendar)")
    if data.series:
        views_ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)


def _bars(gross_ax: Axes, views_ax: Axes, data: ChartData) -> None:
    from matplotlib.ticker import MaxNLocator

    names = [s.name for s in data.series] or ["No sales"]
    gross = _major([s.gross_minor[0] for s in data.series] or [0], data.currency)
    views = [s.qualified_views[0] for s in data.series] or [0]
    digits = display_digits(data.currency)
    places = range(len(names))
    bars = gross_ax.barh(places, [0 if math.isnan(g) else g for g in gross], color="#1f77b4")
    gross_ax.bar_label(
        bars,
        labels=[
            "no FX rate" if math.isnan(g) else f"{g:,.{digits}f} {data.currency}" for g in gross
        ],
        padding=3,
        fontsize=9,
    )
    bars = views_ax.barh(places, views, color="#ff7f0e")
    views_ax.bar_label(bars, labels=[f"{v:,}" for v in views], padding=3, fontsize=9)
    for ax in (gross_ax, views_ax):
        ax.set_yticks(list(places), names)
        ax.invert_yaxis()
        ax.margins(x=0.25)
        ax.grid(True, axis="x", alpha=0.3)
    _money_axis_x(gross_ax, data.currency)
    views_ax.set_xlabel("Qualified views")
    views_ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _money_axis_x(ax: Axes, currency: str) -> None:
    from matplotlib.ticker import FuncFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _tick(v, currency)))
    ax.set_xlabel(f"Gross ({currency})")
