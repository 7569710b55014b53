"""How a report groups its rows: the dimensions finance can combine (``group_by=title,month``)
and the calendar buckets of the time dimension.

A report has at most one time dimension (day, ISO week or calendar month); with one, every
bucket of the range is present, with zeros where nothing happened. A bucket at either end of
the range covers only the range's days (a report from 10 March has a March of 22 days).
"""

from __future__ import annotations

from datetime import date, timedelta
from enum import StrEnum

from core.errors import InvalidInput


class Dimension(StrEnum):
    title = "title"  # type: ignore[assignment]  # shadows str.title; the name is the API's
    territory = "territory"
    # stripe, sandbox, or the app store (app_store, google_play); views have none
    provider = "provider"
    day = "day"
    week = "week"  # ISO week, labelled 2026-W07, starting on its Monday
    month = "month"
    currency = "currency"  # the currency the tickets were sold in


TIME_DIMENSIONS = (Dimension.day, Dimension.week, Dimension.month)

# Names finance may try that are not dimensions of their own: refused with a code and the
# name to use instead, rather than silently grouped by something else.
UNAVAILABLE = {
    "store": "App Store and Google Play sales carry their store as the provider "
    "(app_store, google_play): group by provider",
}


def parse_group_by(text: str) -> tuple[Dimension, ...]:
    """``"title,month"`` -> (title, month); refuses unknown, repeated or clashing names."""
    names = [part.strip().lower() for part in text.split(",")]
    if not text.strip() or any(not n for n in names):
        raise InvalidInput(
            "group_by is a comma-separated list such as title,month", code="report_group_by_invalid"
        )
    dims: list[Dimension] = []
    for name in names:
        if name in UNAVAILABLE:
            raise InvalidInput(
                f"cannot group by {name}: {UNAVAILABLE[name]}", code="report_group_by_unavailable"
            )
        try:
            dim = Dimension(name)
        except ValueError:
            known = ", ".join(d.value for d in Dimension)
            raise InvalidInput(
                f"unknown grouping {name!r}; use {known}", code="report_group_by_unknown"
            ) from None
        if dim in dims:
            raise InvalidInput(f"{name} is given twice", code="report_group_by_invalid")
        dims.append(dim)
    if len([d for d in dims if d in TIME_DIMENSIONS]) > 1:
        raise InvalidInput(
            "group by at most one of day, week and month", code="report_group_by_invalid"
        )
    return tuple(dims)


def time_dimension(dims: tuple[Dimension, ...]) -> Dimension | None:
    return next((d for d in dims if d in TIME_DIMENSIONS), None)


def bucket_start(day: date, dim: Dimension) -> date:
    """The first calendar day of ``day``'s bucket (its Monday, its month's first day)."""
    if dim is Dimension.week:
        return day - timedelta(days=day.weekday())
    if dim is Dimension.month:
        return day.replace(day=1)
    return day


def bucket_after(start: date, dim: Dimension) -> date:
    """The first day of the next bucket."""
    if dim is Dimension.week:
        return start + timedelta(days=7)
    if dim is Dimension.month:
        return date(start.year + start.month // 12, start.month % 12 + 1, 1)
    return start + timedelta(days=1)


def bucket_label(start: date, dim: Dimension) -> str:
    if dim is Dimension.week:
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    if dim is Dimension.month:
        return f"{start.year}-{start.month:02d}"
    return start.isoformat()


def buckets(first: date, last: date, dim: Dimension) -> list[date]:
    """Every bucket touching [first, last], by its first calendar day."""
    out: list[date] = []
    start = bucket_start(first, dim)
    while start <= last:
        out.append(start)
        start = bucket_after(start, dim)
    return out


def bucket_days(start: date, dim: Dimension, first: date, last: date) -> tuple[date, date]:
    """The days of the range a bucket covers: (its first, its last)."""
    return max(start, first), min(bucket_after(start, dim) - timedelta(days=1), last)
