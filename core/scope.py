"""Which studios' rows a caller may read or change: the one answer every studio and report
query applies in SQL.

A :class:`StudioScope` is decided once per request from the caller
(``accounts.service.studio_scope``) and handed to repository functions, which turn it into
a WHERE clause with :meth:`StudioScope.where`. Out of scope is indistinguishable from
missing: the row is simply not found (404), so ids of other studios leak nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, false, true
from sqlalchemy.orm import InstrumentedAttribute

from core.errors import InvalidInput


@dataclass(frozen=True)
class StudioScope:
    """Every studio (admin, finance), one studio (its own users), or none (viewers)."""

    every: bool = False
    studio_id: str | None = None

    @classmethod
    def all_studios(cls) -> StudioScope:
        return cls(every=True)

    @classmethod
    def one(cls, studio_id: str) -> StudioScope:
        return cls(studio_id=studio_id)

    @classmethod
    def nothing(cls) -> StudioScope:
        return cls()

    def where(self, column: InstrumentedAttribute[str]) -> ColumnElement[bool]:
        """The SQL condition "``column`` (a studio id) is in this scope"."""
        if self.every:
            return true()
        if self.studio_id is None:
            return false()
        return column == self.studio_id

    def narrowed(self, studio_id: str | None) -> StudioScope:
        """This scope intersected with a studio the caller asked for (a report filter)."""
        if studio_id is None:
            return self
        if self.every or self.studio_id == studio_id:
            return StudioScope.one(studio_id)
        return StudioScope.nothing()

    def owner(self, requested: str | None = None) -> str:
        """The studio a new row (or a studio setting) belongs to: the caller's own studio,
        or for a caller over every studio the one it names."""
        if self.studio_id is not None:
            if requested not in (None, self.studio_id):
                raise InvalidInput("you can only act for your own studio", code="studio_mismatch")
            return self.studio_id
        if self.every and requested is not None:
            return requested
        raise InvalidInput("say which studio this belongs to", code="studio_required")


# For internal callers (jobs, the viewer catalog's gates) that legitimately see every studio.
ALL_STUDIOS = StudioScope.all_studios()
