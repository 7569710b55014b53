"""The house lints fail on a deliberate violation (run on a throwaway tree), and pass here."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT

LINT_SQL = ROOT / "scripts" / "lint_sql.py"


def _lint(root: Path, baseline: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(LINT_SQL), "--root", str(root), "--baseline", str(baseline)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, source in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return tmp_path


QUERY = "from sqlalchemy import select\n\ndef f(session):\n    return session.scalars(select(X))\n"


def test_sql_in_a_service_fails_and_in_a_repository_passes(tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.txt"
    clean = _tree(tmp_path / "clean", {"catalog/repository.py": QUERY})
    assert _lint(clean, baseline).returncode == 0
    dirty = _tree(tmp_path / "dirty", {"catalog/service.py": QUERY})
    refused = _lint(dirty, baseline)
    assert refused.returncode == 1
    assert "catalog/service.py:4: select( outside repository.py" in refused.stderr
    assert "catalog/service.py:4: session.scalars( outside repository.py" in refused.stderr


def test_each_kind_of_sql_call_is_caught(tmp_path: Path) -> None:
    source = (
        "import sqlalchemy as sa\n"
        "def f(self, conn, db_session):\n"
        "    conn.execute(sa.text('SELECT 1'))\n"
        "    self.session.get(X, 1)\n"
        "    db_session.query(X)\n"
        "    update(X); delete(X); insert(X)\n"
        "    {}.get('not sql')\n"
        "    s.execute(q); s.get('a dict named s')\n"
    )
    refused = _lint(_tree(tmp_path, {"tickets/service.py": source}), tmp_path / "b.txt")
    found = [line.strip() for line in refused.stderr.splitlines() if "outside" in line]
    assert sorted(found) == sorted(
        f"tickets/service.py:{line}: {what} outside repository.py"
        for line, what in [
            (3, "conn.execute("),
            (3, "sa.text("),
            (4, "self.session.get("),
            (5, "db_session.query("),
            (6, "update("),
            (6, "delete("),
            (6, "insert("),
            (8, "s.execute("),
        ]
    )


def test_a_partial_index_predicate_is_schema_but_a_query_beside_it_is_not(
    tmp_path: Path,
) -> None:
    source = (
        "from sqlalchemy import Index, text\n"
        "ix = Index('ix_live', 'ended_at', postgresql_where=text('ended_at IS NULL'))\n"
        "def f(session):\n"
        "    return session.execute(text('DELETE FROM ticket'))\n"
    )
    refused = _lint(_tree(tmp_path, {"tickets/models.py": source}), tmp_path / "b.txt")
    found = [line.strip() for line in refused.stderr.splitlines() if "outside" in line]
    assert sorted(found) == [
        "tickets/models.py:4: session.execute( outside repository.py",
        "tickets/models.py:4: text( outside repository.py",
    ]


def test_the_baseline_only_shrinks(tmp_path: Path) -> None:
    tree = _tree(tmp_path, {"boxoffice/rollup.py": QUERY})
    baseline = tmp_path / "baseline.txt"
    baseline.write_text("boxoffice/rollup.py: 2\n")
    assert _lint(tree, baseline).returncode == 0
    baseline.write_text("boxoffice/rollup.py: 1\n")
    assert _lint(tree, baseline).returncode == 1  # one more than allowed: a new violation
    baseline.write_text("boxoffice/rollup.py: 3\n")
    stale = _lint(tree, baseline)
    assert stale.returncode == 1  # fewer than allowed: the baseline must come down
    assert "lower it" in stale.stderr


def test_this_repository_passes() -> None:
    done = subprocess.run(
        [sys.executable, str(LINT_SQL)], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr


# Packaging-time playlists go through the m3u8 library (transcoding/playlists.py): a string
# literal holding an HLS tag ("#EXT...") in transcoding/ is a playlist built or edited by
# hand. Docstrings may name tags; bytes literals are the upload sniffer looking for them.
def playlist_text_in(package: Path) -> list[str]:
    found = []
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        found += [
            f"{path.relative_to(package.parent)}:{node.lineno}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and "#EXT" in node.value
            and id(node) not in docstrings
        ]
    return found


CLEAN_PACKAGING = '''"""Writes #EXT-X-KEY lines through m3u8."""
SNIFF = (b"#EXTM3U",)


def f(playlist):
    """After #EXT-X-MAP."""
    return playlist.dumps()
'''
HAND_BUILT_PLAYLIST = """def f(lines, uri):
    lines.append(f'#EXT-X-MAP:URI="{uri}"')
    return "\\n".join(["#EXTM3U", *lines])
"""


def test_a_playlist_tag_in_a_string_fails_and_the_library_passes(tmp_path: Path) -> None:
    tree = _tree(
        tmp_path,
        {"transcoding/clean.py": CLEAN_PACKAGING, "transcoding/dirty.py": HAND_BUILT_PLAYLIST},
    )
    assert playlist_text_in(tree / "transcoding") == [
        "transcoding/dirty.py:2",
        "transcoding/dirty.py:3",
    ]


def test_packaging_builds_no_playlist_by_hand() -> None:
    assert playlist_text_in(ROOT / "transcoding") == []
