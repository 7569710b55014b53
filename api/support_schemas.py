"""What support reads about failures (api/routes/support.py): releases that failed to
transcode and background jobs that gave up."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class FailedReleaseRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    title_id: str
    studio_id: str
    label: str
    attempt: int = Field(description="Transcode runs so far")
    failure_code: str | None = Field(description="Stable code, e.g. encode_failed, stalled")
    failure_reason: str | None
    step: str | None = Field(description="The pipeline step that failed, when the code names one")
    status_changed_at: datetime
    retry_path: str = Field(
        description="POST here (an admin or the studio) to start the transcode again"
    )


class FailedReleasePage(BaseModel):
    items: list[FailedReleaseRead]
    total: int
    offset: int
    limit: int


class FailedJobRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    task: str = Field(description="The job, e.g. transcoding.encode_chunk: the step that failed")
    args: dict[str, Any] = Field(description="What it worked on (ids)")

    @field_validator("args")
    @classmethod
    def _ids_only(cls, args: dict[str, Any]) -> dict[str, Any]:
        # Only the ids: a job's other arguments may be secrets in transit (a screener
        # invitation's mail carries its one-time code, which is stored only as a hash).
        return {k: v for k, v in args.items() if k == "id" or k.endswith("_id")}

    attempts: int
    last_error: str | None
    created_at: datetime
    failed_at: datetime | None


class FailedJobPage(BaseModel):
    items: list[FailedJobRead]
    total: int
    offset: int
    limit: int
