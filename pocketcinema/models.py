"""Every ORM model, imported once so that metadata (Alembic, tests) sees all tables."""

from __future__ import annotations

from accounts import models as accounts_models
from boxoffice import models as boxoffice_models
from catalog import models as catalog_models
from core import outbox
from core.db import Base
from drm import models as drm_models
from payments import models as payments_models
from tickets import models as tickets_models
from transcoding import models as transcoding_models

__all__ = [
    "Base",
    "accounts_models",
    "boxoffice_models",
    "catalog_models",
    "drm_models",
    "outbox",
    "payments_models",
    "tickets_models",
    "transcoding_models",
]
