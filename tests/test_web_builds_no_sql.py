"""The web layer builds no SQL: every query lives in `services/` or `db/`.

import-linter (pyproject.toml, "web builds no SQL") already keeps SQLAlchemy's names out of
`stmails.web`; this test covers what an import cannot show: a query run through a session
or connection that a web module was handed (`session.execute(...)`, `.scalars(...)`,
`.scalar(...)`, `.query(...)`).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import stmails.web

WEB = Path(stmails.web.__file__).parent
QUERY_CALLS = {"execute", "scalars", "scalar", "query"}


def query_calls(source: str) -> list[tuple[int, str]]:
    """The lines of `source` that run a query, and the call's text."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in QUERY_CALLS
        ):
            found.append((node.lineno, ast.unparse(node.func)))
    return found


def test_the_check_sees_a_query() -> None:
    source = "def page(session):\n    return session.scalars(select(Campaign))\n"
    assert query_calls(source) == [(2, "session.scalars")]
    assert query_calls("def page(db):\n    return db.query(Campaign).all()\n") == [(2, "db.query")]
    assert query_calls("def page(session):\n    return campaigns.page(session)\n") == []


@pytest.mark.parametrize("path", sorted(WEB.rglob("*.py")), ids=lambda p: str(p.relative_to(WEB)))
def test_web_module_runs_no_query(path: Path) -> None:
    calls = query_calls(path.read_text(encoding="utf-8"))
    assert not calls, (
        f"{path.relative_to(WEB)} runs queries itself; move them into a service function: "
        + ", ".join(f"line {line}: {call}()" for line, call in calls)
    )
