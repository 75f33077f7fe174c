"""`stmails roles list|create` and `stmails users create-api NAME --role ROLE`."""

from __future__ import annotations

from typer.testing import CliRunner

from stmails.cli import commands  # noqa: F401
from stmails.cli.main import app
from stmails.db.engine import make_engine, session_factory
from stmails.services import roles, users


def test_create_a_role_and_an_api_user_with_it(database: str) -> None:
    runner = CliRunner()
    made = runner.invoke(
        app, ["roles", "create", "Bounce poster", "-p", "webhooks:post_bounce", "-p", "bounces:get"]
    )
    assert made.exit_code == 0, made.output
    role_id = int(made.output.strip())
    listed = runner.invoke(app, ["roles", "list"])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.strip().splitlines()
    assert lines[0].split("\t")[1] == "Super Admin"
    assert lines[1] == f"{role_id}\tBounce poster\tbounces:get webhooks:post_bounce"
    token = runner.invoke(app, ["users", "create-api", "poster", "--role", "Bounce poster"])
    assert token.exit_code == 0, token.output
    default = runner.invoke(app, ["users", "create-api", "boss"])
    assert default.exit_code == 0, default.output
    engine = make_engine(database)
    try:
        with session_factory(engine)() as session:
            poster = users.authenticate_token(session, "poster", token.output.strip())
            assert poster is not None and poster.role_id == role_id
            assert roles.effective_permissions(poster.role) == {
                "webhooks:post_bounce",
                "bounces:get",
            }
            boss = users.get_by_username(session, "boss")
            assert boss is not None and roles.is_super_admin(boss.role)
    finally:
        engine.dispose()


def test_refusals_exit_1_with_the_reason(database: str) -> None:
    runner = CliRunner()
    unknown = runner.invoke(app, ["roles", "create", "X", "-p", "lists:get"])
    assert unknown.exit_code == 1 and "unknown permission 'lists:get'" in unknown.output
    no_role = runner.invoke(app, ["users", "create-api", "bot", "--role", "Nope"])
    assert no_role.exit_code == 1 and "role 'Nope' not found" in no_role.output
    assert runner.invoke(app, ["roles", "create", "Y"]).exit_code == 0
    again = runner.invoke(app, ["roles", "create", "Y"])
    assert again.exit_code == 1 and "exists" in again.output
