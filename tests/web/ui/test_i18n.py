"""Every message of the interface is in the catalogs, and translated in zh_CN."""

from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.checkers import python_format
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from stmails.web import i18n

REPO = Path(__file__).resolve().parents[3]


def extracted() -> dict[str | tuple[str, ...], set[str]]:
    """The message ids `make i18n` extracts (babel.cfg), with the files they come from."""
    with (REPO / "babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)
    found: dict[str | tuple[str, ...], set[str]] = {}
    for filename, _, message, _, _ in extract_from_dir(
        str(REPO),
        method_map,
        options_map,
        keywords={**dict.fromkeys(("_", "gettext", "N_")), "ngettext": (1, 2)},
    ):
        key = message if isinstance(message, str) else tuple(message)
        found.setdefault(key, set()).add(filename)
    return found


def catalog(locale: str) -> Catalog:
    path = i18n.CATALOG_DIR / locale / "LC_MESSAGES" / f"{i18n.DOMAIN}.po"
    with path.open("rb") as source:
        return read_po(source, locale=locale)


def test_every_message_is_translated_in_chinese() -> None:
    messages = extracted()
    assert len(messages) > 50, "extraction found too little: check babel.cfg"
    zh = catalog("zh_CN")
    missing = []
    for key, files in sorted(messages.items(), key=str):
        msgid = key if isinstance(key, str) else key[0]
        entry = zh.get(msgid)
        translated = (
            entry is not None
            and not entry.fuzzy
            and (all(entry.string) if isinstance(entry.string, tuple) else bool(entry.string))
        )
        if not translated:
            missing.append((msgid, sorted(files)))
    assert not missing, f"untranslated in zh_CN (run `make i18n`, then translate): {missing}"


def test_catalogs_hold_no_stale_entries_and_placeholders_match() -> None:
    messages = {k if isinstance(k, str) else k[0] for k in extracted()}
    for locale in ("en", "zh_CN"):
        entries = [m for m in catalog(locale) if m.id]
        ids = {m.id if isinstance(m.id, str) else m.id[0] for m in entries}
        assert ids == messages, (locale, ids ^ messages)
    zh = catalog("zh_CN")
    checked = 0
    for message in zh:
        if message.id and "python-format" in message.flags:
            # Raises TranslationError when the translation's placeholders differ.
            python_format(zh, message)
            checked += 1
    assert checked >= 5


def test_chinese_is_served() -> None:
    with i18n.use_locale("zh_CN"):
        assert i18n.gettext("Sign in") == "登录"
        assert (
            i18n.ngettext(
                "You have %(num)d unused recovery code.",
                "You have %(num)d unused recovery codes.",
                2,
            )
            % {"num": 2}
            == "您还有 2 个未使用的恢复码。"
        )
    with i18n.use_locale("en"):
        assert i18n.gettext("Sign in") == "Sign in"


def test_locale_negotiation() -> None:
    assert i18n.negotiate("zh-CN,zh;q=0.9,en;q=0.8") == "zh_CN"
    assert i18n.negotiate("zh-TW") == "zh_CN"
    assert i18n.negotiate("en-GB,zh;q=0.5") == "en"
    assert i18n.negotiate("fr, zh;q=0.1") == "zh_CN"
    assert i18n.negotiate("fr, de") == "en"
    assert i18n.negotiate("en", preferred="zh_CN") == "zh_CN"
    assert i18n.negotiate("zh", preferred="") == "zh_CN"
    assert i18n.negotiate("zh;q=abc, en") == "en"
    assert i18n.negotiate(None) == "en"
    assert i18n.negotiate("x" * 10_000) == "en"
