"""Schemas of the operations routes (api/routes/health.py)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Readiness(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"status": "ready", "checks": {"database": "ok", "broker": "ok"}}]
        }
    )

    status: str = Field(description="Always `ready` in a 200")
    checks: dict[str, str] = Field(description="Each dependency checked, and `ok`")
