"""The API contract as apps see it: operation ids, problem codes per route, auth schemes.

Generated clients (Swift, Kotlin, TypeScript) are built from ``/openapi.json``, so the
document is part of the product. Three conventions keep it precise (docs/api.md):

* every route declares the problem codes *its* code can raise, with :func:`problems`;
  the codes every route shares (request limits, invalid input, the access token, the role
  check) are added here from what the route depends on, so no route repeats them;
* every operation has a readable, stable ``operationId``: ``<tag>_<verb...>`` such as
  ``purchases_create``, given explicitly or derived from the tag and the endpoint's name;
* every route says how the caller authenticates: the access token (``AccessToken``), the
  playback grant (``PlaybackGrant`` or ``PlaybackGrantQuery``), a webhook signature, the
  metrics token, or explicitly nothing (``PUBLIC``).

Each operation gets its own problem schema (``<OperationId>Problem``) whose ``code`` is an
enum of exactly the codes that operation can return, so a client can switch over them.
tests/api/test_contract.py holds every route to these rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts

from api.problem_codes import AUTH_PROBLEMS, CODES, LIMIT_PROBLEMS, STATUS_TITLES
from api.problems import PROBLEM_JSON, Problem

PROBLEM_CODES_KEY = "x-problem-codes"

# Security requirements, for ``openapi_extra={"security": ...}`` on routes that do not
# depend on the access token (those get theirs from FastAPI).
PUBLIC: list[dict[str, list[str]]] = []
PLAYBACK_GRANT: list[dict[str, list[str]]] = [{"PlaybackGrant": []}, {"PlaybackGrantQuery": []}]
WEBHOOK_SIGNATURE: list[dict[str, list[str]]] = [{"WebhookSignature": []}]
METRICS_TOKEN: list[dict[str, list[str]]] = [{"MetricsToken": []}, {}]
KEY_EXCHANGE_TOKEN: list[dict[str, list[str]]] = [{"KeyExchangeToken": []}]
STORE_NOTIFICATION: list[dict[str, list[str]]] = [{"StoreNotification": []}]

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "PlaybackGrant": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "playback grant",
        "description": "The playback grant from POST /v1/playback/sessions (and each "
        "refresh or heartbeat): `Authorization: Bearer <grant>`.",
    },
    "PlaybackGrantQuery": {
        "type": "apiKey",
        "in": "query",
        "name": "token",
        "description": "The playback grant as `?token=`, for players that cannot set "
        "headers; rewritten playlists carry it into every URL.",
    },
    "WebhookSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "Stripe-Signature",
        "description": "Stripe's signature of the raw body under the webhook secret.",
    },
    "KeyExchangeToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "The key exchange credential (KEY_EXCHANGE_TOKEN) of the packager.",
    },
    "StoreNotification": {
        "type": "http",
        "scheme": "bearer",
        "description": "App Store notifications are signed JWS payloads (no header); Google "
        "Play pushes carry Google's OIDC token as `Authorization: Bearer`.",
    },
    "MetricsToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "METRICS_TOKEN, when one is configured.",
    },
}

_OPERATION_ID = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)+$")


def problems(*codes: str | tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: the problem codes its own code can raise.

    A code is looked up in api/problem_codes.py for its status; the few codes used with
    two statuses are given as ``(status, code)``. The house-wide codes (limits, invalid
    input, access token, role) are added by :func:`install`, not listed here."""
    by_status: dict[int, list[str]] = {}
    for entry in codes:
        status, code = entry if isinstance(entry, tuple) else (_status_of(entry), entry)
        if status not in CODES.get(code, ()):
            raise ValueError(f"problem code {code!r} with status {status} is not catalogued")
        by_status.setdefault(status, []).append(code)
    return {
        status: {"description": STATUS_TITLES[status], PROBLEM_CODES_KEY: sorted(set(found))}
        for status, found in by_status.items()
    }


def _status_of(code: str) -> int:
    statuses = CODES.get(code)
    if not statuses:
        raise ValueError(f"unknown problem code {code!r}: add it to api/problem_codes.py")
    if len(statuses) > 1:
        raise ValueError(f"{code!r} has statuses {sorted(statuses)}: write (status, code)")
    return next(iter(statuses))


def operation_id(route: APIRoute) -> str:
    """The fallback id of a route without an explicit one: ``<tag>_<endpoint name>``, the
    tag's words not repeated (``studio_report`` under tag studio stays ``studio_report``)."""
    tag = snake(str(route.tags[0])) if route.tags else "api"
    name = route.name
    if name == tag or name.startswith(f"{tag}_"):
        return name
    return f"{tag}_{name}"


def snake(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def is_house_style(identifier: str) -> bool:
    return bool(_OPERATION_ID.match(identifier))


def install(app: FastAPI) -> None:
    """Serve the contract: the generated document, completed by :func:`complete`."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
                servers=app.servers,
            )
            app.openapi_schema = complete(spec, app.routes)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override


def complete(spec: dict[str, Any], routes: Iterable[Any]) -> dict[str, Any]:
    """Per-operation problem schemas and responses, and the security schemes."""
    components = spec.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = _problem_schema()
    schemes = components.setdefault("securitySchemes", {})
    schemes.update(SECURITY_SCHEMES)
    for route in api_routes(routes):
        for method in sorted(route.methods or ()):
            operation = spec["paths"][route.path_format][method.lower()]
            _complete_operation(operation, route, method, schemas)
    for schema in schemas.values():
        for example in schema.get("examples", []):
            _restore_nulls(example, schema, schemas)
    # FastAPI's own validation schemas: our 422 is a problem, so nothing refers to them.
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return spec


def _restore_nulls(example: Any, schema: dict[str, Any], schemas: dict[str, Any]) -> None:
    """Put back the nulls of an example. FastAPI writes the document without None values,
    which also drops a model example's ``"field": null`` and leaves it invalid against its
    own schema (a required, nullable field missing)."""
    if "$ref" in schema:
        schema = schemas[schema["$ref"].rsplit("/", 1)[1]]
    if isinstance(example, list):
        for item in example:
            _restore_nulls(item, schema.get("items", {}), schemas)
        return
    if not isinstance(example, dict):
        return
    properties: dict[str, Any] = schema.get("properties", {})
    for name, prop in properties.items():
        if name in example:
            _restore_nulls(example[name], prop, schemas)
        elif name in schema.get("required", ()) and {"type": "null"} in prop.get("anyOf", []):
            example[name] = None


def api_routes(routes: Iterable[Any]) -> Iterator[Any]:
    """The documented routes, each as FastAPI sees it inside the app (an included router's
    prefix, tags and responses applied): an APIRoute or a proxy of one."""
    for context in iter_route_contexts(list(routes)):
        if isinstance(context.original_route, APIRoute) and context.include_in_schema:
            yield context


def _complete_operation(
    operation: dict[str, Any], route: Any, method: str, schemas: dict[str, Any]
) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    by_status: dict[int, set[str]] = {}
    for key, response in list(responses.items()):
        declared = response.pop(PROBLEM_CODES_KEY, None)
        if declared is not None:
            by_status.setdefault(int(key), set()).update(declared)
    for status, house in house_problems(route, method).items():
        by_status.setdefault(status, set()).update(house)
    # FastAPI adds a schemaless 422 to every route with parameters: ours replaces it.
    if "422" in responses and 422 not in by_status:
        del responses["422"]
    if not by_status:
        return
    name = "".join(part.capitalize() for part in operation["operationId"].split("_"))
    schema_name = f"{name}Problem"
    every_code: set[str] = set().union(*by_status.values())
    schemas[schema_name] = _problem_schema(schema_name, sorted(every_code))
    for code_status in sorted(by_status):
        listed = ", ".join(f"`{c}`" for c in sorted(by_status[code_status]))
        responses[str(code_status)] = {
            "description": f"{STATUS_TITLES[code_status]}: {listed}",
            "content": {PROBLEM_JSON: {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}},
        }
    # The route's own success status first: generators take the first 2xx as the answer.
    first = str(route.status_code or 200)
    operation["responses"] = dict(sorted(responses.items(), key=lambda kv: (kv[0] != first, kv[0])))


def house_problems(route: Any, method: str) -> dict[int, set[str]]:
    """The codes a route returns because of what it is, not what its code does: request
    limits (api/limits.py), invalid input (any parameter or body), the access token and
    the role check (api/deps.py)."""
    found: dict[int, set[str]] = {}
    for status, codes in LIMIT_PROBLEMS["any"].items():
        found.setdefault(status, set()).update(codes)
    if method not in ("GET", "HEAD", "OPTIONS", "DELETE"):
        for status, codes in LIMIT_PROBLEMS["body"].items():
            found.setdefault(status, set()).update(codes)
    dependants = list(walk(route.dependant))
    extra_parameters = (route.openapi_extra or {}).get("parameters")
    if any(_takes_input(d) for d in dependants) or extra_parameters:
        found.setdefault(422, set()).add("invalid_input")
    calls = {getattr(d.call, "__qualname__", "") for d in dependants}
    if "get_principal" in calls:
        for status, codes in AUTH_PROBLEMS["token"].items():
            found.setdefault(status, set()).update(codes)
    if "get_locales" in calls:  # ?lang= and Accept-Language are parsed as BCP 47 tags
        found.setdefault(422, set()).add("invalid_locale")
    if "require_role.<locals>.check" in calls:
        for status, codes in AUTH_PROBLEMS["role"].items():
            found.setdefault(status, set()).update(codes)
    return found


def walk(dependant: Dependant) -> Iterator[Dependant]:
    """The route's dependant and every dependency under it."""
    yield dependant
    for sub in dependant.dependencies:
        yield from walk(sub)


def _takes_input(dependant: Dependant) -> bool:
    return bool(
        dependant.path_params
        or dependant.query_params
        or dependant.header_params
        or dependant.cookie_params
        or dependant.body_params
    )


def _problem_schema(name: str = "Problem", codes: list[str] | None = None) -> dict[str, Any]:
    schema = Problem.model_json_schema()
    schema["title"] = name
    if codes is not None:
        schema["properties"]["code"] = {
            "type": "string",
            "enum": codes,
            "title": "Code",
            "description": "Stable machine-readable code; apps branch on this.",
        }
        schema["description"] = "A problem this operation can return (RFC 9457)."
    return schema
