"""services.users: hashed secrets, authentication, the start-up guarantees."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy.orm import Session, sessionmaker

from stmails.services import users
from stmails.services.errors import Conflict, InvalidInput


def test_passwords_are_salted_scrypt_hashes() -> None:
    first, second = users.hash_password("correct horse"), users.hash_password("correct horse")
    assert first != second and first.startswith("scrypt$")
    assert users.verify_password("correct horse", first)
    assert not users.verify_password("wrong horse", first)
    assert not users.verify_password("x", "garbage")
    assert not users.verify_password("x", None)


def test_tokens_verify_and_are_not_stored_in_clear(session: Session) -> None:
    user, token = users.create_api_user(session, "bot")
    assert token not in (user.token_hash or "")
    assert users.authenticate_token(session, "bot", token) is user
    assert users.authenticate_token(session, "bot", token + "x") is None
    assert users.authenticate_token(session, "nobody", token) is None
    with pytest.raises(Conflict):
        users.create_api_user(session, "bot")
    with pytest.raises(InvalidInput):
        users.create_api_user(session, "has:colon")


def test_ensure_admin_generates_a_password_once(session: Session) -> None:
    made = users.ensure_admin(session, "admin", None)
    assert made.created and made.generated_password
    assert users.authenticate_password(session, "admin", made.generated_password) is made.user
    assert made.user.last_login is None
    users.note_login(session, made.user.id)
    session.refresh(made.user)
    assert made.user.last_login is not None
    again = users.ensure_admin(session, "admin", None)
    assert not again.created and again.generated_password is None
    # A configured password becomes authoritative.
    users.ensure_admin(session, "admin", "configured-pw")
    assert users.authenticate_password(session, "admin", "configured-pw") is not None
    assert users.authenticate_password(session, "admin", made.generated_password) is None


def test_ensure_api_user_accepts_the_configured_token(session: Session) -> None:
    users.ensure_api_user(session, "automation", "token-from-env-1")
    assert users.authenticate_token(session, "automation", "token-from-env-1") is not None
    users.ensure_api_user(session, "automation", "token-from-env-2")
    assert users.authenticate_token(session, "automation", "token-from-env-1") is None
    assert users.authenticate_token(session, "automation", "token-from-env-2") is not None


def test_disabled_users_cannot_log_in(session: Session) -> None:
    user, token = users.create_api_user(session, "bot")
    user.status = "disabled"
    assert users.authenticate_token(session, "bot", token) is None


def test_two_concurrent_demotions_keep_one_super_admin(
    session_maker: sessionmaker[Session],
) -> None:
    with session_maker() as session:
        users.create_admin(session, "first", "first-password-1")
        users.create_admin(session, "second", "second-password-2")
        session.commit()
    outcomes: list[str] = []
    first_checked = threading.Event()

    def disable(name: str, after: threading.Event | None) -> None:
        # The second demotion starts only once the first has checked and holds its transaction
        # open: started earlier, it could take SQLite's write lock first and so be the one
        # that goes through.
        if after is not None:
            assert after.wait(30)
        with session_maker() as session:
            user = users.get_by_username(session, name)
            assert user is not None
            try:
                users.update_user(session, user, status="disabled")
            except Conflict:
                outcomes.append(f"{name} refused")
                return
            if after is None:
                first_checked.set()
                # Hold the transaction open while the other one tries.
                time.sleep(0.5)
            session.commit()
            outcomes.append(f"{name} disabled")

    threads = [
        threading.Thread(target=disable, args=("first", None)),
        threading.Thread(target=disable, args=("second", first_checked)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["first disabled", "second refused"]
