"""The API contract's house rules (docs/api.md), checked over the document apps generate
their clients from, and over the source the problem codes come from."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from api.app import create_app
from api.contract import api_routes, is_house_style, snake, walk
from api.problem_codes import CODES

# Over the document and the source only: the same on every backend.
pytestmark = pytest.mark.backend_agnostic

ROOT = Path(__file__).resolve().parents[2]
DOMAIN_PACKAGES = (
    "core",
    "accounts",
    "catalog",
    "payments",
    "drm",
    "tickets",
    "transcoding",
    "boxoffice",
    "playback",
    "api",
)
JSON_TYPES = ("application/json", "application/problem+json")


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return create_app().openapi()


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, items in spec["paths"].items():
        for method, operation in items.items():
            yield f"{method.upper()} {path}", operation


def test_every_operation_has_a_readable_unique_id_a_summary_and_a_description(
    spec: dict[str, Any],
) -> None:
    seen: dict[str, str] = {}
    for name, operation in operations(spec):
        op_id = operation.get("operationId", "")
        assert is_house_style(op_id), f"{name}: operationId {op_id!r} is not <tag>_<verb>"
        tags = [snake(tag) for tag in operation["tags"]]
        # <tag>_... is the derived form; an explicit id may name its domain instead.
        assert tags, name
        assert op_id not in seen, f"{name} and {seen.get(op_id)} share {op_id}"
        seen[op_id] = name
        assert operation.get("summary"), f"{name} has no summary"
        assert operation.get("description"), f"{name} has no description (the docstring)"
    assert len(seen) >= 80


def test_every_operation_declares_how_the_caller_authenticates(spec: dict[str, Any]) -> None:
    schemes = set(spec["components"]["securitySchemes"])
    assert {"AccessToken", "PlaybackGrant", "PlaybackGrantQuery"} <= schemes
    for name, operation in operations(spec):
        assert "security" in operation, f"{name}: say its auth scheme, or PUBLIC"
        for requirement in operation["security"]:
            assert set(requirement) <= schemes, name
    grant_routes = [
        name
        for name, operation in operations(spec)
        if {"PlaybackGrant": []} in operation["security"]
    ]
    # keys, media, 2 playlists, the DASH manifest, licenses, refresh, heartbeat, stop
    assert len(grant_routes) == 9, grant_routes


def test_every_error_response_lists_exactly_catalogued_codes(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    for name, operation in operations(spec):
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            content = response.get("content", {})
            assert list(content) == ["application/problem+json"], f"{name} {status}"
            ref = content["application/problem+json"]["schema"]["$ref"].rsplit("/", 1)[1]
            codes = schemas[ref]["properties"]["code"]["enum"]
            listed = [c for c in codes if f"`{c}`" in response["description"]]
            assert listed, f"{name} {status}: no code of {ref} in its description"
            for code in listed:
                assert int(status) in CODES[code], f"{name}: {code} is not a {status}"


def test_success_responses_are_the_real_ones(spec: dict[str, Any]) -> None:
    for name, operation in operations(spec):
        successes = [s for s in operation["responses"] if s.startswith("2")]
        assert successes, name
        first = operation["responses"][successes[0]]
        if successes[0] != "204":
            assert first.get("content"), f"{name}: {successes[0]} has no content"
        for status in successes:
            for media, body in operation["responses"][status].get("content", {}).items():
                if media in JSON_TYPES:
                    assert body.get("schema"), f"{name} {status}: a schemaless JSON answer"
    purchase = spec["paths"]["/v1/purchases"]["post"]["responses"]
    assert list(purchase)[:2] == ["201", "200"]
    for status in ("201", "200"):
        schema = purchase[status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/PaymentSheetRead"}


def test_schema_names_are_domain_names(spec: dict[str, Any]) -> None:
    for schema_name in spec["components"]["schemas"]:
        assert "__" not in schema_name, f"{schema_name} leaks a module path"
        assert not schema_name.startswith("Body_"), f"{schema_name}: name the request body"
        assert schema_name[0].isupper(), schema_name
        assert schema_name.isalnum(), schema_name


def raised_codes() -> Iterator[tuple[str, int, str]]:
    """(where, status, code) of every AppError built in the source with a literal code (or
    its class's code), classes resolved per module so that two classes of one name in two
    packages are not confused."""
    trees = {
        path: ast.parse(path.read_text())
        for package in DOMAIN_PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }
    # class name -> [(module path, base name, status, code)]
    classes: dict[str, list[tuple[Path, str, int | None, str | None]]] = {}
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.bases:
                facts: dict[str, Any] = {}
                for item in node.body:
                    if (
                        isinstance(item, ast.Assign | ast.AnnAssign)
                        and isinstance(target := _target(item), ast.Name)
                        and isinstance(item.value, ast.Constant)
                    ):
                        facts[target.id] = item.value.value
                base = node.bases[0]
                base_name = base.id if isinstance(base, ast.Name) else ast.unparse(base)
                classes.setdefault(node.name, []).append(
                    (path, base_name, facts.get("status"), facts.get("code"))
                )

    def lookup(path: Path, name: str) -> tuple[int, str | None] | None:
        """The status and code of class ``name`` as seen from ``path``, None if it is not
        an AppError. A class of this module wins over one of the same name elsewhere."""
        status: int | None = None
        code: str | None = None
        for _ in range(10):
            candidates = classes.get(name, [])
            same = [c for c in candidates if c[0] == path]
            if not (same or candidates):
                return None
            where, base, own_status, own_code = (same or candidates)[0]
            status = status if status is not None else own_status
            code = code if code is not None else own_code
            if name == "AppError":
                return (status or 400, code)
            path, name = where, base
        return None

    for path, tree in trees.items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name is None or (known := lookup(path, name)) is None:
                continue
            status, code = known
            given = [k.value for k in node.keywords if k.arg == "code"]
            if given:  # an f-string code cannot be checked here; the catalog spells them out
                literal = given[0].value if isinstance(given[0], ast.Constant) else None
                code = literal if isinstance(literal, str) else None
            if code is not None:
                yield f"{path.relative_to(ROOT)}:{node.lineno}", status, code


def _target(node: ast.Assign | ast.AnnAssign) -> ast.expr:
    return node.targets[0] if isinstance(node, ast.Assign) else node.target


def test_every_code_the_source_raises_is_catalogued_with_its_status() -> None:
    found = list(raised_codes())
    assert len(found) > 150
    missing = [
        f"{where}: {status} {code}"
        for where, status, code in found
        if status not in CODES.get(code, frozenset())
    ]
    assert not missing, "add these to api/problem_codes.py:\n" + "\n".join(missing)


# The operations a viewer's app is generated for: their schemas carry examples. (Studio,
# finance and admin schemas have field descriptions; examples for them are still to write.)
APP_TAGS = {"auth", "catalog", "purchases", "tickets", "playback"}


def _schema_name(schema: dict[str, Any]) -> str | None:
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[1]
    if schema.get("type") == "array":
        return _schema_name(schema.get("items", {}))
    return None


def test_the_apps_request_and_response_schemas_have_examples_that_validate(
    spec: dict[str, Any],
) -> None:
    schemas = spec["components"]["schemas"]
    used: set[str] = set()
    for _, operation in operations(spec):
        if not APP_TAGS & set(operation["tags"]):
            continue
        bodies = list(operation.get("requestBody", {}).get("content", {}).values())
        for status, response in operation["responses"].items():
            if status.startswith("2"):
                bodies += list(response.get("content", {}).values())
        used |= {name for body in bodies if (name := _schema_name(body.get("schema", {})))}
    assert len(used) >= 20
    missing = sorted(name for name in used if not schemas[name].get("examples"))
    assert not missing, f"add model examples to {missing}"
    for name, schema in schemas.items():
        validator = Draft202012Validator(
            {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
        )
        for example in schema.get("examples", []):
            errors = [e.message for e in validator.iter_errors(example)]
            assert not errors, f"{name}'s example: {errors}"


class Source:
    """Our packages' modules, parsed: enough to follow a route's calls to the errors they
    raise. Calls are followed through module functions, imported names and modules,
    ``self.`` methods and ``Class.method``; a method called on any other object (a payment
    provider, a studio scope) is not followed, so those routes name such codes by hand."""

    def __init__(self) -> None:
        self.paths: dict[str, Path] = {}
        self.trees: dict[str, ast.Module] = {}
        for package in DOMAIN_PACKAGES:
            for path in sorted((ROOT / package).rglob("*.py")):
                module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
                module = module.removesuffix(".__init__")
                self.paths[module] = path
                self.trees[module] = ast.parse(path.read_text())
        self.imports: dict[str, dict[str, str]] = {}
        self.functions: dict[str, tuple[str, ast.FunctionDef | ast.AsyncFunctionDef, str]] = {}
        self.classes: dict[str, list[tuple[str, str, int | None, str | None]]] = {}
        for module, tree in self.trees.items():
            names: dict[str, str] = {}
            for node in tree.body:
                if isinstance(node, ast.ImportFrom) and node.module:
                    for alias in node.names:
                        names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
                elif isinstance(node, ast.Import):
                    for alias in node.names:
                        names[alias.asname or alias.name] = alias.name
                elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    self.functions[f"{module}.{node.name}"] = (module, node, "")
                elif isinstance(node, ast.ClassDef):
                    for item in node.body:
                        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                            qual = f"{module}.{node.name}.{item.name}"
                            self.functions[qual] = (module, item, node.name)
            self.imports[module] = names
            for found in ast.walk(tree):
                if isinstance(found, ast.ClassDef) and found.bases:
                    facts = {
                        target.id: item.value.value
                        for item in found.body
                        if isinstance(item, ast.Assign | ast.AnnAssign)
                        and isinstance(target := _target(item), ast.Name)
                        and isinstance(item.value, ast.Constant)
                    }
                    base = found.bases[0]
                    base_name = base.id if isinstance(base, ast.Name) else ast.unparse(base)
                    status = facts.get("status")
                    code = facts.get("code")
                    self.classes.setdefault(found.name, []).append(
                        (
                            module,
                            base_name,
                            status if isinstance(status, int) else None,
                            code if isinstance(code, str) else None,
                        )
                    )

    def error(self, module: str, name: str) -> tuple[int, str | None] | None:
        """Status and code of the class ``name`` seen from ``module``; None unless an
        AppError. A class of the same module wins over one of the same name elsewhere."""
        status: int | None = None
        code: str | None = None
        for _ in range(10):
            candidates = self.classes.get(name, [])
            same = [c for c in candidates if c[0] == module]
            if not (same or candidates):
                return None
            where, base, own_status, own_code = (same or candidates)[0]
            status = status if status is not None else own_status
            code = code if code is not None else own_code
            if name == "AppError":
                return (status or 400, code)
            module, name = where, base
        return None

    def reach(self, qualname: str, seen: set[str] | None = None) -> set[tuple[int, str]]:
        """(status, code) of every error the function raises, itself or through calls."""
        seen = seen if seen is not None else set()
        if qualname in seen or qualname not in self.functions:
            return set()
        seen.add(qualname)
        module, node, owner = self.functions[qualname]
        names = self.imports[module]
        found: set[tuple[int, str]] = set()
        caught = self._caught(module, node)
        for call in (n for n in ast.walk(node) if isinstance(n, ast.Call)):
            func = call.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if (known := self.error(module, name)) is not None:
                status, code = known
                given = [k.value for k in call.keywords if k.arg == "code"]
                if given:
                    literal = given[0].value if isinstance(given[0], ast.Constant) else None
                    code = literal if isinstance(literal, str) else None
                if code is not None:
                    found.add((status, code))
                continue
            target = ""
            if isinstance(func, ast.Name):
                local = f"{module}.{name}"
                target = local if local in self.functions else names.get(name, "")
            elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                holder = func.value.id
                if holder == "self" and owner:
                    target = f"{module}.{owner}.{name}"
                elif holder in names:
                    target = f"{names[holder]}.{name}"
                elif f"{module}.{holder}.{name}" in self.functions:
                    target = f"{module}.{holder}.{name}"
            for candidate in (target, f"{target}.__init__"):
                reached = self.reach(candidate, seen)
                # A call inside ``try: ... except SomeError:`` does not pass that error on.
                # Raise sites may give any code to a class (``InvalidInput(..., code=...)``),
                # so a caught class drops every finding of its status from that call.
                for status in caught.get(id(call), ()):
                    reached = {r for r in reached if r[0] != status}
                found |= reached
        return found

    def _caught(self, module: str, node: ast.AST) -> dict[int, list[int]]:
        """For each call inside a ``try`` body: the statuses its ``except`` clauses catch."""
        caught: dict[int, list[int]] = {}
        for block in (n for n in ast.walk(node) if isinstance(n, ast.Try)):
            errors = [
                known[0]
                for handler in block.handlers
                if isinstance(handler.type, ast.Name)
                and (known := self.error(module, handler.type.id)) is not None
            ]
            for statement in block.body:
                for call in (n for n in ast.walk(statement) if isinstance(n, ast.Call)):
                    caught.setdefault(id(call), []).extend(errors)
        return caught


def test_every_route_declares_the_codes_its_code_can_raise(spec: dict[str, Any]) -> None:
    source = Source()
    app = create_app()
    checked = 0
    gaps: list[str] = []
    for route in api_routes(app.routes):
        roots = [route.endpoint, *(d.call for d in walk(route.dependant) if d.call)]
        derived: set[tuple[int, str]] = set()
        for root in roots:
            qualname = getattr(root, "__qualname__", type(root).__qualname__)
            derived |= source.reach(f"{root.__module__}.{qualname}")
        for method in route.methods:
            operation = spec["paths"][route.path_format][method.lower()]
            declared = {
                (int(status), code)
                for status, response in operation["responses"].items()
                if int(status) >= 400
                for code in CODES
                if f"`{code}`" in response["description"]
            }
            if missing := sorted(derived - declared):
                gaps.append(f"{operation['operationId']}: add to problems(): {missing}")
            checked += 1
    assert checked >= 80
    assert not gaps, "\n".join(gaps)
