"""The interface's languages: gettext catalogs (Babel) for English and Simplified Chinese.

The catalogs are the committed `.po` files beside this module (`<locale>/LC_MESSAGES/
messages.po`), compiled in memory the first time they are needed, so a fresh clone and an
installed wheel behave the same and no compiled `.mo` file can go stale. `make i18n` extracts
the messages of the code and templates (babel.cfg) and updates both catalogs.

A request's language is the signed-in user's choice, else the best match of the browser's
Accept-Language, else English. Code marks text with `_()` (translated now, in the current
request's language) or `N_()` (marked for extraction, translated when shown); templates use
`{% trans %}` and `_()`.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

CATALOG_DIR = Path(__file__).resolve().parent
DOMAIN = "messages"
DEFAULT_LOCALE = "en"
LOCALES = ("en", "zh_CN")
# What each language is called in itself (the language menu).
LANGUAGE_NAMES = {"en": "English", "zh_CN": "简体中文"}
# Accept-Language values are short; a header longer than this is not read past it.
ACCEPT_LANGUAGE_MAX = 500

_current: ContextVar[str] = ContextVar("stmails_locale", default=DEFAULT_LOCALE)


@functools.cache
def translations(locale: str) -> NullTranslations:
    """The compiled catalog of `locale` (English falls back to the message ids)."""
    path = CATALOG_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
    if locale not in LOCALES or not path.is_file():
        return NullTranslations()
    with path.open("rb") as source:
        catalog = read_po(source, locale=locale, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def negotiate(accept_language: str | None, preferred: str | None = None) -> str:
    """The locale to use: `preferred` when it is a supported one, else the best supported
    match of an Accept-Language header, else English. Any Chinese variant gets zh_CN."""
    if preferred in LOCALES:
        return str(preferred)
    if not accept_language:
        return DEFAULT_LOCALE
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept_language[:ACCEPT_LANGUAGE_MAX].split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            weighted.append((-quality, index, tag.strip()))
    for _, _, tag in sorted(weighted):
        found = _supported(tag)
        if found:
            return found
    return DEFAULT_LOCALE


def _supported(tag: str) -> str | None:
    if tag == "*":
        return DEFAULT_LOCALE
    try:
        language = Locale.parse(tag.replace("_", "-"), sep="-").language
    except (ValueError, UnknownLocaleError):
        language = tag.split("-")[0].split("_")[0].lower()
    if language == "zh":
        return "zh_CN"
    if language == "en":
        return "en"
    return None


def current_locale() -> str:
    """The locale of the text being produced now."""
    return _current.get()


@contextmanager
def use_locale(locale: str) -> Iterator[None]:
    """Within the block, `_()` and templates produce text in `locale`."""
    token = _current.set(locale if locale in LOCALES else DEFAULT_LOCALE)
    try:
        yield
    finally:
        _current.reset(token)


def set_locale(locale: str) -> None:
    """Sets the locale for the rest of the current task (a request's handler)."""
    _current.set(locale if locale in LOCALES else DEFAULT_LOCALE)


def gettext(message: str) -> str:
    """`message` in the current locale."""
    return translations(_current.get()).ugettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural form for `n`, in the current locale."""
    return translations(_current.get()).ungettext(singular, plural, n)


def N_(message: str) -> str:
    """Marks `message` for extraction without translating it (it is translated when shown)."""
    return message


_ = gettext
