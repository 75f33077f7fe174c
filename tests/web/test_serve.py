"""`stmails serve` preparation: migrations, the admin made once with a password shown once,
and the API user from the environment."""

from __future__ import annotations

from collections.abc import Callable

from stmails.cli.serve import prepare
from stmails.config import Settings
from stmails.db.engine import make_engine, session_factory
from stmails.services import roles, users


def test_admin_password_is_generated_once_and_api_user_is_ensured(
    fresh_database_url: Callable[[], str],
) -> None:
    url = fresh_database_url()
    settings = Settings(database_url=url, api_user="automation", api_token="automation-token-123")
    password = prepare(settings)
    assert password
    # A second start migrates nothing new and shows no password again.
    assert prepare(settings) is None
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session:
            assert users.authenticate_password(session, "admin", password) is not None
            assert users.authenticate_token(session, "automation", "automation-token-123")
    finally:
        engine.dispose()


def test_configured_admin_password_is_used_and_not_printed(
    fresh_database_url: Callable[[], str],
) -> None:
    url = fresh_database_url()
    settings = Settings(database_url=url, admin_user="boss", admin_password="chosen-password-1")
    assert prepare(settings) is None
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session:
            assert users.authenticate_password(session, "boss", "chosen-password-1") is not None
    finally:
        engine.dispose()


def test_configured_api_user_role_is_given_on_start(
    fresh_database_url: Callable[[], str],
) -> None:
    url = fresh_database_url()
    engine = make_engine(url)
    try:
        first = Settings(database_url=url, api_user="automation", api_token="automation-token-1")
        prepare(first)
        with session_factory(engine)() as session:
            roles.create(session, "Poster", ["webhooks:post_bounce"])
            session.commit()
        prepare(first.model_copy(update={"api_user_role": "Poster"}))
        with session_factory(engine)() as session:
            user = users.get_by_username(session, "automation")
            assert user is not None and user.role.name == "Poster"
        # Unset again: the user keeps the role it was given.
        prepare(first)
        with session_factory(engine)() as session:
            user = users.get_by_username(session, "automation")
            assert user is not None and user.role.name == "Poster"
    finally:
        engine.dispose()


def test_an_empty_admin_user_leaves_the_first_admin_to_the_first_run_page(
    fresh_database_url: Callable[[], str],
) -> None:
    url = fresh_database_url()
    assert prepare(Settings(database_url=url, admin_user="")) is None
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session:
            assert users.list_users(session) == []
    finally:
        engine.dispose()
