"""The README's first minute: `make run` (`stmails serve` in a folder with no database yet, no
settings at all) prints the admin credential once; a browser opening the server's address
gets the admin UI; the credential works on the API (`GET /api/health`, listmonk's login
check); a restart keeps it and prints nothing new."""

from __future__ import annotations

import re
import stat
import sys
from pathlib import Path

import httpx

from running_server import environment, stmails_serve

# What `make run` runs: the `stmails` program installed in the virtualenv.
STMAILS = [str(Path(sys.executable).parent / "stmails")]
CREDENTIAL = re.compile(r"created admin user '([^']+)' with password: (\S+)")
BROWSER = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chromium",
}


def test_make_run_on_an_empty_folder_prints_a_working_admin_credential_once(
    tmp_path: Path,
) -> None:
    # No STMAILS_* variable, no stmails.toml: the defaults the README describes.
    env = environment()
    with stmails_serve(STMAILS, env, tmp_path) as server:
        printed = CREDENTIAL.findall(server.output())
        assert len(printed) == 1, server.output()
        ((user, password),) = printed
        assert user == "admin" and len(password) >= 20
        assert "admin UI at http://127.0.0.1:" in server.output()

        page = httpx.get(server.url + "/", headers=BROWSER, follow_redirects=True)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert page.url.path.startswith("/admin/")
        assert "<form" in page.text and 'name="password"' in page.text

        health = httpx.get(server.url + "/api/health", auth=(user, password))
        assert health.status_code == 200 and health.json() == {"data": True}
        assert httpx.get(server.url + "/api/health").status_code == 401
        wrong = httpx.get(server.url + "/api/health", auth=(user, password + "x"))
        assert wrong.status_code == 403
        assert server.stop() == 0

    # The README: SQLite at ./stmails.db, a new file readable by its owner only.
    database = tmp_path / "stmails.db"
    assert database.is_file()
    assert stat.S_IMODE(database.stat().st_mode) == 0o600

    # A second start finds the admin and prints no password; the printed one still works.
    with stmails_serve(STMAILS, env, tmp_path) as again:
        assert "with password" not in again.output()
        health = httpx.get(again.url + "/api/health", auth=(user, password))
        assert health.status_code == 200 and health.json() == {"data": True}
