"""No input yields a 500, and every answer matches the OpenAPI document.

Schemathesis generates requests for every operation from /openapi.json (valid and invalid
bodies, parameters and headers) and sends each one as five callers: anonymous, viewer,
studio, finance and admin. Two checks must hold for every response: not a server error,
and the body conforms to the schema documented for its status code. The budget is fixed
(``EXAMPLES`` per operation, derandomized), so the run is the same in every CI build.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from accounts import service as accounts
from accounts.models import Role
from api.app import create_app
from core.db import unit_of_work
from core.settings import reset_settings_cache
from tests.helpers import auth_header, create_studio

EXAMPLES = 6

CHECKS: list[Callable[..., Any]] = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
]


@pytest.fixture
def deployment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Sign in with Apple and Google switched on (with an offline, empty key set), so that
    their routes run their real token checks instead of answering "not configured"."""
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": []}))
    for provider in ("APPLE", "GOOGLE"):
        monkeypatch.setenv(f"POCKETCINEMA_{provider}_CLIENT_IDS", "app.fuzz.example")
        monkeypatch.setenv(f"POCKETCINEMA_{provider}_JWKS_FILE", str(jwks))
    reset_settings_cache()
    yield
    monkeypatch.undo()
    reset_settings_cache()


@pytest.fixture
def callers(client: TestClient, deployment: None) -> dict[str, dict[str, str]]:
    studio = create_studio("Fuzz Pictures")
    headers: dict[str, dict[str, str]] = {"anonymous": {}}
    with unit_of_work() as session:
        for role in Role:
            # No password: these callers only ever present access tokens (and hashing one
            # per role per operation would be most of this test's time).
            user = accounts.create_user(
                session,
                f"{role.value}@fuzz.example",
                None,
                role,
                studio.id if role is Role.studio else None,
            )
            headers[role.value] = auth_header(user)
    return headers


# The app reads its settings and database per request, so one app made at import serves the
# test databases the fixtures make.
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app())


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors_and_answers_match_the_schema(
    case: schemathesis.Case[Any], callers: dict[str, dict[str, str]]
) -> None:
    for headers in callers.values():
        case.call_and_validate(headers={**dict(case.headers or {}), **headers}, checks=CHECKS)
