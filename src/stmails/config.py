"""Process-level settings: environment variables (`STMAILS_*`) and an optional TOML file.

Precedence, highest first: keyword arguments, environment variables, the TOML file named by
`STMAILS_CONFIG` (else `./stmails.toml` when it exists), the defaults below. Settings that the API
changes at run time (bounce rules, mailboxes, providers, SMTP servers) are not here: they live in
the database's `settings` table, read through `stmails.services.settings`.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

# The file that holds the generated secret key, inside `data_dir`.
SECRET_KEY_FILE = "secret_key"
DEFAULT_TOML = Path("stmails.toml")

LogFormat = Literal["text", "json"]
LogLevel = Literal["debug", "info", "warning", "error"]


def config_file() -> Path | None:
    """The TOML file to read: `$STMAILS_CONFIG` if set, else `./stmails.toml` if it exists."""
    named = os.environ.get("STMAILS_CONFIG", "")
    if named:
        return Path(named)
    return DEFAULT_TOML if DEFAULT_TOML.is_file() else None


class Settings(BaseSettings):
    """Everything the process needs before it can open the database."""

    model_config = SettingsConfigDict(env_prefix="STMAILS_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///./stmails.db",
        description=(
            "SQLAlchemy URL of the database. SQLite (WAL mode) by default; PostgreSQL 15+ with "
            "`postgresql+psycopg://user:password@host/dbname`."
        ),
    )
    host: str = Field(default="127.0.0.1", description="Address `stmails serve` listens on.")
    port: int = Field(default=9000, ge=1, le=65535, description="TCP port of `stmails serve`.")
    workers: int = Field(
        default=1, ge=1, description="Server processes (more than one only with PostgreSQL)."
    )
    admin_user: str = Field(default="admin", description="Name of the admin user made on start.")
    admin_password: SecretStr | None = Field(
        default=None,
        description=(
            "Password of the admin user. When unset, a random one is generated once and printed "
            "once, when the admin user is first created."
        ),
    )
    api_user: str | None = Field(
        default=None,
        description="With `api_token`: an API user that is made to exist on start (automation).",
    )
    api_token: SecretStr | None = Field(
        default=None, description="The access token of `api_user`; stored only as a hash."
    )
    api_user_role: str | None = Field(
        default=None,
        description=(
            "Name of the role `api_user` is given on start (the role must exist). When unset, "
            "a new `api_user` gets Super Admin and an existing one keeps its role."
        ),
    )
    data_dir: Path = Field(
        default=Path("."),
        description="Folder for files stmails keeps (the secret key, verification jobs).",
    )
    root_url: str = Field(
        default="http://127.0.0.1:9000",
        description="Public base URL, used in links inside mail (unsubscribe, archive).",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description=(
            "Key for HMAC tokens (VERP, unsubscribe links). When unset it is generated once and "
            "kept in `data_dir/secret_key` (mode 0600); see `Settings.resolved_secret_key()`."
        ),
    )
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest accepted HTTP request body, in bytes."
    )
    db_pool_size: int = Field(
        default=10, ge=1, description="Connections kept open per process (PostgreSQL)."
    )
    db_busy_timeout_ms: int = Field(
        default=5000,
        ge=0,
        description="How long SQLite waits for a lock before the operation fails (503 upstream).",
    )
    log_format: LogFormat = Field(
        default="text",
        description=(
            "`text`: one readable line per record (for a terminal, `make run`); `json`: one JSON "
            "object per line with time, level, logger, message and the request id (for a log "
            "collector). Logs go to standard error."
        ),
    )
    log_level: LogLevel = Field(
        default="info", description="Least severe level logged: debug, info, warning or error."
    )

    send_claim_timeout: float = Field(
        default=120.0,
        ge=5,
        description=(
            "Seconds after which a campaign send claimed by a sender process but never "
            "recorded is reported `in_doubt` (that process died between SMTP and its database "
            "write); it is never sent again. Longer than one batch takes to send."
        ),
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        min_length=16,
        description=(
            "Bearer token that lets a Prometheus scraper read `GET /metrics` "
            "(`Authorization: Bearer <token>`), at least 16 characters. Without it `/metrics` "
            "answers only users with the `settings:get` permission."
        ),
    )
    metrics_dir: Path | None = Field(
        default=None,
        description=(
            "Directory where every stmails process of this host keeps its metrics "
            "(prometheus-client's multiprocess mode), so that `/metrics` of any server process "
            "reports all of them; emptied when `stmails serve` starts. Unset: each process "
            "reports only its own (fine with one server process)."
        ),
    )

    @field_validator("log_format", "log_level", mode="before")
    @classmethod
    def _lower_case(cls, value: Any) -> Any:
        # `JSON` or `INFO` in an environment variable mean what they say.
        return value.strip().lower() if isinstance(value, str) else value

    # The admin UI's sign-in (services.sessions, services.login_guard).
    session_idle_minutes: int = Field(
        default=120,
        ge=1,
        description="A browser session ends after this many minutes without a request.",
    )
    session_max_hours: int = Field(
        default=24,
        ge=1,
        description="A browser session ends this many hours after sign-in, however active.",
    )
    trusted_proxies: str = Field(
        default="127.0.0.1,::1",
        description=(
            "Comma-separated addresses (or `*`) of reverse proxies whose X-Forwarded-For and "
            "X-Forwarded-Proto are believed: the client address the login throttle counts, and "
            "HTTPS (Secure cookies, HSTS) behind a TLS-terminating proxy. Empty trusts none."
        ),
    )
    password_check_concurrency: int = Field(
        default=4,
        ge=1,
        description=(
            "Password hashes (scrypt, 16 MB each) computed at once per process; a sign-in "
            "beyond that is answered 503 with Retry-After instead of queueing."
        ),
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments, then the environment, then the TOML file (if any)."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml = config_file()
        if toml is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml))
        return tuple(sources)

    def resolved_secret_key(self) -> str:
        """The secret key: the configured one, else the one persisted in `data_dir`.

        The first call on a fresh `data_dir` generates 32 random bytes (URL-safe text), writes
        them with mode 0600 and returns them; later calls and later processes read the same key.
        """
        if self.secret_key is not None and self.secret_key.get_secret_value():
            return self.secret_key.get_secret_value()
        path = self.data_dir / SECRET_KEY_FILE
        if path.is_file():
            return path.read_text(encoding="ascii").strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # Write a private temporary file, then link it into place: link() fails when another
        # process won the race, and then both use the winner's key, never a half-written one.
        tmp = path.with_name(f".{SECRET_KEY_FILE}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(secrets.token_urlsafe(32) + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
        return path.read_text(encoding="ascii").strip()

    @property
    def is_sqlite(self) -> bool:
        """True when `database_url` names a SQLite database."""
        return self.database_url.startswith("sqlite")


def load_settings() -> Settings:
    """Settings from the environment and the TOML file."""
    return Settings()
