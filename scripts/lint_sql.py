"""House lint: SQL lives only in each package's ``repository.py``.

Flags, outside repository.py, migrations/, tests/ and benchmarks/:

* calls of SQLAlchemy statement builders: ``select(``, ``insert(``, ``update(``,
  ``delete(``, ``text(`` (bare or as ``sa.select(`` ...);
* ``execute``, ``scalar``, ``scalars``, ``get``, ``get_one`` and ``query`` called on a
  session or a connection: a receiver whose name says ``session`` or ``conn``, or one named
  ``s`` or ``db`` (for those, not ``get`` or ``query``, which dicts have too).

Infrastructure in ``core/`` that must speak SQL itself is listed in ``EXCEPTIONS`` with the
reason. Anything else already present when the lint arrived is listed in
``scripts/sql_baseline.txt`` (``path: count``): the lint fails when a file has more
violations than its baseline, and asks for the baseline to shrink when it has fewer, so the
list only ever gets shorter.

Usage: ``python scripts/lint_sql.py [--root DIR] [--write-baseline]``; exit status 1 on a
violation.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

BUILDERS = {"select", "insert", "update", "delete", "text"}
SESSION_METHODS = {"execute", "scalar", "scalars", "get", "get_one", "query"}
RECEIVER = re.compile(r"(session|conn)", re.IGNORECASE)
# Short session names; ``get`` is left out for them because dicts named ``s`` have it too.
SHORT_RECEIVER = re.compile(r"^(s|db)$")
PACKAGES = (
    "core",
    "accounts",
    "catalog",
    "payments",
    "drm",
    "tickets",
    "transcoding",
    "boxoffice",
    "forensics",
    "api",
    "pocketcinema",
)
# Infrastructure that is SQL by nature, each with the reason it is not a repository.
EXCEPTIONS: dict[str, str] = {
    "core/db.py": "the engine and session layer itself (insert_or_ignore builds the statement)",
    "core/outbox.py": "the outbox table and its relay belong to every package",
    "core/jobs.py": "leases on outbox rows, claimed and finished in their own transactions",
}
BASELINE = Path(__file__).with_name("sql_baseline.txt")


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what} outside repository.py"


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_name(node.value)}.{node.attr}"
    if isinstance(node, ast.Call):
        return _name(node.func) + "()"
    return ""


def violations_in(source: str, path: str) -> list[Violation]:
    found: list[Violation] = []
    tree = ast.parse(source, filename=path)
    # A partial index's predicate (``Index(..., postgresql_where=text("..."))``) is schema
    # declared with the model, not a query: the one place a model may hold SQL text.
    predicates = {
        id(keyword.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        for keyword in node.keywords
        if keyword.arg is not None and keyword.arg.endswith("_where")
    }
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or id(node) in predicates:
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in BUILDERS:
            found.append(Violation(path, node.lineno, f"{func.id}("))
        elif isinstance(func, ast.Attribute):
            receiver = _name(func.value)
            if (func.attr in BUILDERS and receiver in {"sa", "sqlalchemy"}) or (
                func.attr in SESSION_METHODS
                and (
                    RECEIVER.search(receiver.split(".")[-1])
                    or (SHORT_RECEIVER.match(receiver) and func.attr not in {"get", "query"})
                )
            ):
                found.append(Violation(path, node.lineno, f"{receiver}.{func.attr}("))
    return found


def checked_files(root: Path) -> list[Path]:
    files = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            relative = path.relative_to(root).as_posix()
            if path.name == "repository.py" or relative in EXCEPTIONS:
                continue
            files.append(path)
    return files


def scan(root: Path) -> list[Violation]:
    found: list[Violation] = []
    for path in checked_files(root):
        found += violations_in(path.read_text(), path.relative_to(root).as_posix())
    return found


def read_baseline(path: Path) -> Counter[str]:
    allowed: Counter[str] = Counter()
    if path.is_file():
        for line in path.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                name, count = line.rsplit(":", 1)
                allowed[name.strip()] = int(count)
    return allowed


def judge(found: list[Violation], allowed: Counter[str]) -> tuple[list[str], list[str]]:
    """(errors, stale baseline entries) for what was found against what is allowed."""
    per_file = Counter(v.path for v in found)
    errors = []
    for path, count in sorted(per_file.items()):
        if count > allowed[path]:
            listed = [str(v) for v in found if v.path == path]
            errors.append(
                f"{path}: {count} SQL call(s), baseline allows {allowed[path]}; move SQL into "
                "the package's repository.py\n  " + "\n  ".join(listed)
            )
    stale = [
        f"{path}: baseline says {n}, found {per_file[path]}; lower it in {BASELINE.name}"
        for path, n in sorted(allowed.items())
        if per_file[path] < n
    ]
    return errors, stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--baseline", type=Path, default=BASELINE)
    parser.add_argument("--write-baseline", action="store_true")
    args = parser.parse_args(argv)
    found = scan(args.root)
    if args.write_baseline:
        counts = Counter(v.path for v in found)
        lines = [f"{path}: {n}" for path, n in sorted(counts.items())]
        header = (
            "# SQL outside repository.py still to be moved (scripts/lint_sql.py): a count may\n"
            "# only go down; the lint fails when one grows and asks to lower it when it shrinks.\n"
        )
        args.baseline.write_text(header + "\n".join(lines) + ("\n" if lines else ""))
        return 0
    errors, stale = judge(found, read_baseline(args.baseline))
    for message in errors + stale:
        print(message, file=sys.stderr)
    return 1 if errors or stale else 0


if __name__ == "__main__":
    sys.exit(main())
