"""The wheel: it holds every file of the package and the right metadata, and `pip install` of it
into a new virtualenv gives a `stmails serve` that migrates its database and serves, reading
its packaged files (migrations, templates, catalogs, static assets) from the installed copy.

It runs once, in the SQLite run of the suite (the PostgreSQL run skips it: it tests the package,
not a database), and skips when pip cannot reach a package index for the dependencies.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import httpx
import pytest
from babel.messages.pofile import read_po
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from running_server import environment, stmails_serve
from stmails.db.migrate import head_revision

pytestmark = pytest.mark.packaging

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO / "src" / "stmails"
# What pip prints when it cannot reach an index (no network), as opposed to a real failure.
OFFLINE_SIGNS = (
    "NewConnectionError",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "No route to host",
    "ConnectTimeoutError",
    "Could not fetch URL",
)


def package_files() -> dict[str, Path]:
    """Every file under src/stmails that belongs in the wheel, by its name in the wheel."""
    return {
        "stmails/" + path.relative_to(SOURCE).as_posix(): path
        for path in SOURCE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def normalized(requirement: str) -> str:
    """A requirement as wheel metadata spells it (the project name normalized)."""
    parsed = Requirement(requirement)
    parsed.name = canonicalize_name(parsed.name)
    return str(parsed)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("STMAILS_TEST_DATABASE_URL"):
        pytest.skip("the wheel is tested once, in the SQLite run")
    out = tmp_path_factory.mktemp("dist")
    # The build backend comes from the development environment: no network needed.
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    done = subprocess.run(
        [*command, "--quiet", "--wheel-dir", str(out), str(REPO)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (built,) = out.glob("stmails-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtualenv with the wheel and its dependencies installed; its folder."""
    venv = tmp_path_factory.mktemp("venv")
    # The development environment's pip installs into the new one (no pip of its own to set
    # up), with pip's configuration (indexes, constraints) and without compiling bytecode: the
    # same packages, in a fraction of the time.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install"]
    done = subprocess.run(
        [*pip, "--quiet", "--no-compile", "--retries", "1", "--timeout", "30", str(wheel)],
        capture_output=True,
        text=True,
        env=environment(),
        timeout=600,
    )
    output = done.stdout + done.stderr
    if done.returncode != 0 and any(sign in output for sign in OFFLINE_SIGNS):
        pytest.skip("no package index reachable for the wheel's dependencies:\n" + output[-2000:])
    assert done.returncode == 0, output
    return venv


def test_the_wheel_holds_every_file_of_the_package_and_nothing_else(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA")))
        entry_points = archive.read(
            next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        ).decode()
    expected = package_files()
    inside = {name for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert sorted(set(expected) - inside) == [], "files of the package missing from the wheel"
    assert sorted(inside - set(expected)) == [], "files in the wheel that the package lacks"
    # Templates, migrations and the like: the files that are not Python code are there too.
    assert {n for n in expected if not n.endswith(".py")} <= inside
    assert "stmails/db/migrations/versions/0001_initial.py" in inside
    assert "stmails = stmails.cli.main:main" in entry_points
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requires = {
        normalized(line.removeprefix("Requires-Dist: "))
        for line in metadata.decode().splitlines()
        if line.startswith("Requires-Dist: ") and "extra ==" not in line
    }
    assert requires == {normalized(requirement) for requirement in project["dependencies"]}


PACKAGED_FILES = """
import hashlib, importlib.resources, json, sys
import stmails
root = importlib.resources.files("stmails")
names = json.loads(sys.argv[1])
print(json.dumps({
    "location": stmails.__file__,
    "digests": {n: hashlib.sha256(root.joinpath(n).read_bytes()).hexdigest() for n in names},
}))
"""


# A versioned asset URL of a page, and the file's path under web/static.
ASSET = re.compile(r"(/static/[0-9a-f]+/([A-Za-z0-9_./-]+))")


def chinese_for(english_page: str) -> set[str]:
    """The zh_CN translations (from the source tree's catalog) of the messages that
    `english_page` shows."""
    catalog = SOURCE / "web" / "i18n" / "zh_CN" / "LC_MESSAGES" / "messages.po"
    with catalog.open("rb") as source:
        messages = read_po(source, locale="zh_CN")
    return {
        message.string
        for message in messages
        if isinstance(message.id, str)
        and isinstance(message.string, str)
        and len(message.id) > 3
        and message.string
        and message.id in english_page
    }


def test_the_installed_package_serves_from_its_own_files(installed: Path, tmp_path: Path) -> None:
    python = str(installed / "bin" / "python")
    data_files = sorted(
        name.removeprefix("stmails/")
        for name in package_files()
        if not name.endswith((".py", "py.typed"))
    )
    probe = subprocess.run(
        [python, "-c", PACKAGED_FILES, json.dumps(data_files)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=environment(),
        check=True,
    )
    found = json.loads(probe.stdout)
    # The installed copy is used, not the source tree.
    assert Path(found["location"]).is_relative_to(installed)
    assert data_files, "the package has no data files to check"
    for name in data_files:
        source = hashlib.sha256((SOURCE / name).read_bytes()).hexdigest()
        assert found["digests"][name] == source, name

    database = tmp_path / "stmails.db"
    env = environment(
        STMAILS_DATABASE_URL=f"sqlite:///{database}",
        STMAILS_DATA_DIR=str(tmp_path),
        STMAILS_ADMIN_PASSWORD="packaged-admin-password",
    )
    with stmails_serve([str(installed / "bin" / "stmails")], env, tmp_path) as server:
        health = httpx.get(server.url + "/health")
        assert (health.status_code, health.json()) == (200, {"data": True})
        ready = httpx.get(server.url + "/health/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["data"]["checks"]["migrations"] is True
        # The admin UI's sign-in page renders from the packaged templates, in the language of
        # the packaged catalogs, and its assets come from the packaged static folder.
        english = httpx.get(server.url + "/admin/login", headers={"Accept-Language": "en"})
        chinese = httpx.get(server.url + "/admin/login", headers={"Accept-Language": "zh-CN"})
        assert english.status_code == chinese.status_code == 200
        assert english.headers["content-type"].startswith("text/html")
        expected = chinese_for(english.text)
        assert expected and any(text in chinese.text for text in expected), "no zh_CN text"
        assert not any(text in english.text for text in expected)
        assets = sorted(set(ASSET.findall(english.text)))
        assert assets, "the page links no static asset"
        for url, name in assets:
            served = httpx.get(server.url + url)
            expected = (SOURCE / "web" / "static" / name).read_bytes()
            assert (served.status_code, served.content) == (200, expected), url
    connection = sqlite3.connect(database)
    try:
        revisions = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    finally:
        connection.close()
    # The packaged migrations ran, up to the newest of the source tree.
    assert revisions == [(head_revision(),)]
