"""The request and response schemas of `api/routes/webhooks.py`."""

from __future__ import annotations

from pydantic import BaseModel


class WebhookReceipt(BaseModel):
    event_id: str
    type: str
    status: str  # handled | ignored | duplicate
