# ruff: noqa: RUF001 - Chinese text uses full-width punctuation on purpose
"""Development seed: one studio and one demo title on sale worldwide (with prices in a few
countries), so a fresh ``serve`` lists something to buy in the US."""

from __future__ import annotations

from datetime import timedelta

from accounts import service as accounts
from accounts.repository import get_studio_by_name
from catalog import service as catalog
from catalog.models import TerritoryMode
from catalog.repository import get_title_by_slug
from core.db import unit_of_work, utcnow

DEMO_STUDIO = "Pocket Cinema Demo Studio"
DEMO_SLUG = "the-lantern-keeper"
DEMO_PRICES = {
    "US": (1299, "USD"),
    "CA": (1599, "CAD"),
    "GB": (999, "GBP"),
    "FR": (1099, "EUR"),
    "DE": (1099, "EUR"),
    "JP": (1500, "JPY"),
    "TW": (390, "TWD"),
}
DEMO_LOCALIZATIONS = {
    "zh-Hant": (
        "守燈人",
        "燈在，人就在。",
        "山城最後一位守燈人，在停電的夜裡等待一艘不會回來的船。",
    ),
    "zh": ("守灯人", "灯在，人就在。", "山城最后一位守灯人，在停电的夜里等待一艘不会回来的船。"),
    "en": (
        "The Lantern Keeper",
        "While the lamp burns, someone is home.",
        "The last lantern keeper of a mountain town waits, through a night without power, "
        "for a boat that will not come back.",
    ),
    "fr": (
        "Le Gardien des lanternes",
        "Tant que la lampe brûle, quelqu'un veille.",
        "Le dernier gardien des lanternes d'une ville de montagne attend un bateau qui ne "
        "reviendra pas.",
    ),
}


def seed_demo() -> bool:
    """Create the demo title if it is missing; returns True when something was created."""
    with unit_of_work() as session:
        if get_title_by_slug(session, DEMO_SLUG) is not None:
            return False
        studio = get_studio_by_name(session, DEMO_STUDIO) or accounts.create_studio(
            session, DEMO_STUDIO
        )
        title = catalog.create_title(
            session,
            studio_id=studio.id,
            slug=DEMO_SLUG,
            original_title="守燈人",
            original_language="zh-Hant",
            runtime_seconds=6240,
            genres=["drama", "mystery"],
        )
        for locale, (name, tagline, synopsis) in DEMO_LOCALIZATIONS.items():
            catalog.put_localization(
                session, title, locale, name=name, tagline=tagline, synopsis=synopsis
            )
        now = utcnow()
        catalog.add_window(
            session,
            title,
            territory_mode=TerritoryMode.worldwide_except,
            countries=[],
            starts_at=now - timedelta(days=1),
            ends_at=now + timedelta(days=365),
            prices=DEMO_PRICES,
        )
    return True
