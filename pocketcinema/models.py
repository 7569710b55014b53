"""Every ORM model, imported once so that metadata (Alembic, tests) sees all tables."""

from __future__ import annotations

from accounts import models as accounts_models
from catalog import models as catalog_models
from core import outbox
from core.db import Base
from drm import models as drm_models

__all__ = ["Base", "accounts_models", "catalog_models", "drm_models", "outbox"]
