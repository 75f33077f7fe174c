"""A throw-away Dovecot (IMAP and POP3) on loopback, for integration tests and the benchmark.

It runs from its own configuration in a temporary folder: a passwd-file with one static test
user, maildir storage in the folder, plain, STARTTLS and implicit-TLS listeners on free ports
with a self-signed certificate made here. Running as root, the login and mail processes use
Dovecot's own unprivileged users; otherwise everything runs as the current user.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ..certs import write_certificate

USER = "bounces"
PASSWORD = "bounce-pass-123"
# The OAuth 2.0 access token the test identity provider accepts for USER (XOAUTH2).
OAUTH_TOKEN = "ya29.test-access-token-0123456789"


class UserInfo(BaseHTTPRequestHandler):
    """A stand-in for an identity provider's userinfo endpoint, which Dovecot asks about
    XOAUTH2 tokens (introspection_mode = auth, as for Microsoft 365)."""

    def do_GET(self) -> None:
        if self.headers.get("Authorization", "") == f"Bearer {OAUTH_TOKEN}":
            body, status = json.dumps({"email": USER}).encode(), 200
        else:
            body, status = b'{"error": "invalid_token"}', 401
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


def dovecot_binary() -> str | None:
    return shutil.which("dovecot") or next(
        (p for p in ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot") if os.path.exists(p)), None
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Dovecot:
    """One server; `start()` makes its folder (readable by Dovecot's users), `stop()` removes it."""

    folder: Path = Path()
    ports: dict[str, int] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    cert: Path = Path()
    userinfo: ThreadingHTTPServer | None = None
    # (uid, gid) of the mail files when running as root, else None (files are ours).
    mail_owner: tuple[int, int] | None = None

    def start(self) -> None:
        binary = dovecot_binary()
        if binary is None:
            raise RuntimeError("dovecot is not installed (make setup installs it)")
        # Dovecot's own users must reach the folder: a fresh one right under the temp dir.
        self.folder = Path(tempfile.mkdtemp(prefix="stmails-dovecot-"))
        os.chmod(self.folder, 0o755)
        for sub in ("run", "state", "mail"):
            (self.folder / sub).mkdir(exist_ok=True)
        self.cert, key = write_certificate(self.folder)
        if os.geteuid() == 0:
            mail_user = pwd.getpwnam("dovecot")
            login_user, internal_user = "dovenull", "dovecot"
            uid, gid = mail_user.pw_uid, mail_user.pw_gid
            os.chown(self.folder / "mail", uid, gid)
            self.mail_owner = (uid, gid)
            os.chmod(key, 0o600)
        else:
            login_user = internal_user = pwd.getpwuid(os.getuid()).pw_name
            uid, gid = os.getuid(), os.getgid()
        group = grp.getgrgid(gid).gr_name
        (self.folder / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
        self.userinfo = ThreadingHTTPServer(("127.0.0.1", 0), UserInfo)
        threading.Thread(target=self.userinfo.serve_forever, daemon=True).start()
        (self.folder / "oauth2.conf").write_text(
            "introspection_mode = auth\n"
            f"introspection_url = http://127.0.0.1:{self.userinfo.server_address[1]}/userinfo\n"
            "username_attribute = email\n"
        )
        self.ports = {name: free_port() for name in ("imap", "imaps", "pop3", "pop3s")}
        config = f"""
base_dir = {self.folder}/run
state_dir = {self.folder}/state
log_path = {self.folder}/dovecot.log
protocols = imap pop3
listen = 127.0.0.1
default_login_user = {login_user}
default_internal_user = {internal_user}
default_internal_group = {group}
first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = 0
ssl = yes
ssl_cert = <{self.cert}
ssl_key = <{key}
disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2
auth_failure_delay = 0
mail_location = maildir:{self.folder}/mail/%u
pop3_uidl_format = %08Xu%08Xv
mail_max_userip_connections = 50
passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%u {self.folder}/passwd
}}
passdb {{
  driver = oauth2
  mechanisms = xoauth2
  args = {self.folder}/oauth2.conf
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={self.folder}/mail/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
}}
service imap-login {{
  inet_listener imap {{
    port = {self.ports["imap"]}
  }}
  inet_listener imaps {{
    port = {self.ports["imaps"]}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {self.ports["pop3"]}
  }}
  inet_listener pop3s {{
    port = {self.ports["pop3s"]}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
service pop3-login {{
  chroot =
}}
"""
        conf = self.folder / "dovecot.conf"
        conf.write_text(config)
        self.process = subprocess.Popen(
            [binary, "-c", str(conf), "-F"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                error = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"dovecot exited: {error}\n{self.log()}")
            if all(self._listening(port) for port in self.ports.values()):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"dovecot did not start:\n{self.log()}")

    def deliver(self, messages: list[bytes]) -> None:
        """Put messages straight into the INBOX maildir (as a local delivery agent would)."""
        inbox = self.folder / "mail" / USER
        for sub in ("new", "cur", "tmp"):
            (inbox / sub).mkdir(parents=True, exist_ok=True)
        stamp = int(time.time())
        owner = self.mail_owner
        paths = [inbox / "tmp", inbox / "new", inbox / "cur", inbox, self.folder / "mail" / USER]
        for number, raw in enumerate(messages):
            name = f"{stamp}.M{number}P{os.getpid()}.stmails-bench"
            tmp = inbox / "tmp" / name
            tmp.write_bytes(raw)
            if owner is not None:
                os.chown(tmp, *owner)
            tmp.rename(inbox / "new" / name)
        if owner is not None:
            for path in paths:
                os.chown(path, *owner)

    @staticmethod
    def _listening(port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False

    def log(self) -> str:
        path = self.folder / "dovecot.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()
        self.process = None
        if self.userinfo is not None:
            self.userinfo.shutdown()
            self.userinfo.server_close()
            self.userinfo = None
        if self.folder != Path() and self.folder.exists():
            shutil.rmtree(self.folder, ignore_errors=True)
