"""Development seed: one studio and one demo title, so a fresh ``serve`` lists something."""

from __future__ import annotations

from accounts import service as accounts
from accounts.repository import get_studio_by_name
from catalog import service as catalog
from catalog.repository import get_title_by_slug
from core.db import unit_of_work

DEMO_STUDIO = "Pocket Cinema Demo Studio"
DEMO_SLUG = "the-lantern-keeper"


def seed_demo() -> bool:
    """Create the demo title if it is missing; returns True when something was created."""
    with unit_of_work() as session:
        if get_title_by_slug(session, DEMO_SLUG) is not None:
            return False
        studio = get_studio_by_name(session, DEMO_STUDIO) or accounts.create_studio(
            session, DEMO_STUDIO
        )
        catalog.create_title(
            session,
            studio_id=studio.id,
            slug=DEMO_SLUG,
            original_title="The Lantern Keeper",
            original_language="zh-Hant",
            runtime_seconds=6240,
        )
    return True
