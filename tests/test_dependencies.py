"""Issue 11, M5: Jinja2 at 3.1.6 or later (sandbox escapes were fixed there), and a lock file
that pins every package `make setup` installs, so installs are reproducible."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# A requirement's name: letters, digits and . _ - (PEP 508), normalized as PEP 503 does.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _release(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def _pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _locked() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith((" ", "#", "-")):
            name, _, pinned = line.partition("==")
            assert pinned, f"not pinned: {line}"
            pins[_normalized(name)] = pinned.split(";")[0].strip()
    return pins


def test_jinja2_is_required_at_3_1_6_or_later() -> None:
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    (jinja,) = [d for d in project["dependencies"] if d.lower().startswith("jinja2")]
    assert _release(jinja.split(">=")[1]) >= (3, 1, 6), jinja
    assert _release(_locked()["jinja2"]) >= (3, 1, 6)
    assert _release(version("jinja2")) >= (3, 1, 6)


def test_the_lock_pins_every_dependency_and_setup_installs_with_it() -> None:
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    wanted = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    locked = _locked()
    for requirement in wanted:
        match = NAME.match(requirement)
        assert match, requirement
        assert _normalized(match.group(0)) in locked, f"{requirement} is not in requirements.lock"
    setup = (ROOT / "scripts" / "setup.sh").read_text(encoding="utf-8")
    assert "-c requirements.lock" in setup
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^lock:", makefile, re.MULTILINE)
    assert re.search(r"^\$\(STAMP\):.*requirements\.lock", makefile, re.MULTILINE)


def test_installed_versions_are_the_locked_ones() -> None:
    for name in ("jinja2", "fastapi", "sqlalchemy", "pydantic", "starlette", "markupsafe"):
        assert version(name) == _locked()[name], name
