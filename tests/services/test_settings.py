"""services.settings: listmonk's keys with stmails' defaults, validation, masked secrets."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from stmails.db.models import Setting
from stmails.db.types import utcnow
from stmails.services import intake, settings
from stmails.services.settings import MASK, SettingsError


def test_defaults_follow_listmonk_with_processing_on(session: Session) -> None:
    values = settings.get_all(session)
    assert values["bounce.enabled"] is True
    assert values["bounce.webhooks_enabled"] is True
    assert values["bounce.ses_enabled"] is False
    assert values["bounce.mailboxes"] == []
    actions = values["bounce.actions"]
    assert {k: (v["count"], v["action"]) for k, v in actions.items()} == {
        "soft": (2, "none"),
        "hard": (1, "blocklist"),
        "complaint": (1, "blocklist"),
    }
    config = settings.bounce_config(session)
    assert config.escalation_count == 3
    assert config.reason_overrides == {"mailboxfull": "soft"}
    assert config.rules["hard"].window_days == 0


def test_stored_values_win_over_defaults(session: Session) -> None:
    settings.set_value(session, "bounce.actions", {"soft": {"count": 4, "action": "unsubscribe"}})
    session.commit()
    rule = settings.bounce_config(session).rules["soft"]
    assert (rule.count, rule.action, rule.window_days) == (4, "unsubscribe", 0)
    # Partial rules are completed from the defaults.
    assert settings.get(session, "bounce.actions")["hard"]["action"] == "blocklist"


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [
        ("bounce.actions", {"soft": {"count": 0, "action": "none"}}, "bounce.actions.soft.count"),
        (
            "bounce.actions",
            {"hard": {"count": 1, "action": "explode"}},
            "bounce.actions.hard.action",
        ),
        ("bounce.actions", {"bogus": {"count": 1, "action": "none"}}, "bounce.actions"),
        ("bounce.enabled", "yes", "bounce.enabled"),
        ("bounce.reason_overrides", {"mailboxfull": "maybe"}, "bounce.reason_overrides"),
        ("bounce.soft_escalation", {"enabled": True, "count": 0}, "bounce.soft_escalation.count"),
        ("verify.on_subscribe", "sometimes", "verify.on_subscribe"),
        ("verify.reject", "syntax", "verify.reject"),
        ("verify.reject", ["syntax", "spam"], "verify.reject"),
    ],
)
def test_invalid_values_are_refused_naming_the_field(
    session: Session, key: str, value: object, field: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        settings.set_value(session, key, value)
    assert caught.value.field == field


def test_update_is_all_or_nothing(session: Session) -> None:
    with pytest.raises(SettingsError):
        settings.update(session, {"bounce.ses_enabled": True, "bounce.enabled": "no"})
    assert settings.get(session, "bounce.ses_enabled") is False


def test_secrets_are_masked_on_read_and_kept_when_written_back(session: Session) -> None:
    settings.update(
        session,
        {
            "bounce.sendgrid_key": "sg-secret",
            "bounce.postmark": {"enabled": True, "username": "pm", "password": "pm-secret"},
            "smtp": [{"uuid": "u1", "host": "mx", "password": "smtp-secret"}],
        },
    )
    shown = settings.masked(settings.get_all(session))
    assert shown["bounce.sendgrid_key"] == MASK
    assert shown["bounce.postmark"]["password"] == MASK
    assert shown["smtp"][0]["password"] == MASK
    # None of the stored secrets shows (a key such as azure's `shared_secret` may).
    assert not any(
        v in repr(list(shown.values())) for v in ("sg-secret", "pm-secret", "smtp-secret")
    )
    # A client PUTs back what it read, changing one field.
    shown["bounce.postmark"]["username"] = "pm2"
    stored = settings.update(session, shown)
    assert stored["bounce.sendgrid_key"] == "sg-secret"
    assert stored["bounce.postmark"] == {
        "enabled": True,
        "username": "pm2",
        "password": "pm-secret",
    }
    assert stored["smtp"][0]["password"] == "smtp-secret"
    # An explicit new secret replaces the old one.
    assert settings.update(session, {"bounce.sendgrid_key": "new"})["bounce.sendgrid_key"] == "new"


def test_broken_stored_rules_fall_back_to_defaults(session: Session) -> None:
    from stmails.db.models import Setting

    session.add(Setting(key="bounce.actions", value={"soft": "nonsense"}))
    session.flush()
    assert settings.bounce_config(session).rules["hard"].action == "blocklist"


def test_a_stored_intake_setting_that_no_longer_validates_reads_as_its_default(
    session: Session,
) -> None:
    # Rows written by an older version (or by hand) must not stop subscribers being added.
    session.add(Setting(key="verify.on_subscribe", value="strict", updated_at=utcnow()))
    session.add(Setting(key="verify.reject", value=["syntax", "gone"], updated_at=utcnow()))
    session.commit()
    check = intake.current(session)
    assert (check.mode, check.reject) == ("off", frozenset({"syntax", "disposable"}))


def test_the_simple_keys_are_validated_strictly_by_their_types() -> None:
    assert settings.validate("verify.reject", ["syntax", "syntax", "disposable"]) == [
        "syntax",
        "disposable",
    ]
    assert settings.validate("bounce.reason_overrides", {"mailboxfull": "hard"}) == {
        "mailboxfull": "hard"
    }
    assert settings.validate("bounce.mailbox_trust", "verp") == "verp"
    assert settings.validate("verify.dns_timeout", 2) == 2.0
    assert settings.validate("app.optin_template_id", 0) is None
    # JSON's types are kept: no number as text, no 1 for true.
    for key, value, message in [
        ("bounce.enabled", 1, "must be true or false"),
        ("bounce.mailbox_trust", "VERP", "one of verp, sent, any"),
        ("public.optin_mail_daily_max", "3", "must be a whole number from 1 to 100"),
        ("public.optin_mail_daily_max", True, "must be a whole number from 1 to 100"),
        ("verify.dns_timeout", 11, "must be a number of seconds from 0.1 to 10"),
        ("app.optin_template_id", -1, "must be a template id or null"),
    ]:
        with pytest.raises(SettingsError) as caught:
            settings.validate(key, value)
        assert (caught.value.field, caught.value.message) == (key, message)
