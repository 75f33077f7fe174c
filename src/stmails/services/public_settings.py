"""The settings of the subscriber-facing pages: their defaults and how each value is checked.

`services.settings` merges `DEFAULTS` into its own and calls `validate()` for these keys, so
they are read and written through `GET`/`PUT /api/settings` like every other setting.
listmonk's keys where it has them:

- `app.site_name`, `app.logo_url`: the name and logo the public pages show. The logo is a
  `data:image/...;base64,` URL (served by stmails at `/public/logo`, so the pages' CSP holds)
  or a path on this server; an address on another site is refused (the CSP would block it).
- `app.send_optin_confirmation`: mail the opt-in confirmation when someone subscribes to a
  double opt-in list (default on).
- `app.enable_public_subscription_page`, `app.enable_public_archive`,
  `app.enable_public_archive_rss_content`: the hosted form, the archive, and whether the RSS
  feed carries each message's content.
- `privacy.allow_blocklist`, `privacy.allow_preferences`, `privacy.allow_export`,
  `privacy.allow_wipe`: what the preferences page offers; `privacy.record_optin_ip`: store the
  address and time of each opt-in; `privacy.domain_blocklist` / `privacy.domain_allowlist`:
  domains (a leading `*.` covers subdomains) refused at sign-up and import / the only ones
  accepted (an empty allowlist accepts every domain).
- `security.captcha`: `{"altcha": {"enabled": false, "complexity": 100000}}`: the ALTCHA
  proof-of-work on the public form (no third party); `complexity` is the largest number the
  browser may have to try.
- `appearance.public.custom_css`: CSS added to every public page, served as a stylesheet at
  `/public/custom.css`; text that could load another site's content or leave the stylesheet
  (`@import`, `url(` to another site, `expression(`, `javascript:`, `<`, and CSS escapes,
  which could spell those) is refused.

stmails' own keys:

- `app.optin_template_id`: the transactional template of the confirmation mail (null: stmails
  makes one called "Opt-in confirmation" on first use, which the admin can then edit).
- `public.optin_mail_interval_minutes` (10) and `public.optin_mail_daily_max` (3): at most one
  confirmation mail per address per interval and so many a day, whoever asks for them.
- `public.signup_ip_hourly_max` (20): sign-ups accepted from one client address per hour;
  `public.signup_address_hourly_max` (5): sign-up attempts for one address per hour.
- `verify.on_subscribe_dns` (false) and `verify.dns_timeout` (2 s): the public form also checks
  the address's mail domain in DNS, within the time budget (past it the address is accepted).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from stmails.services.errors import InvalidInput
from stmails.services.validation import setting_check

DEFAULTS: dict[str, Any] = {
    "app.site_name": "stmails",
    "app.logo_url": "",
    "app.send_optin_confirmation": True,
    "app.enable_public_subscription_page": True,
    "app.enable_public_archive": True,
    "app.enable_public_archive_rss_content": True,
    "app.optin_template_id": None,
    "privacy.record_optin_ip": False,
    "privacy.allow_blocklist": True,
    "privacy.allow_preferences": True,
    "privacy.allow_export": True,
    "privacy.allow_wipe": True,
    "privacy.domain_blocklist": [],
    "privacy.domain_allowlist": [],
    "security.captcha": {"altcha": {"enabled": False, "complexity": 100000}},
    "appearance.public.custom_css": "",
    "public.optin_mail_interval_minutes": 10,
    "public.optin_mail_daily_max": 3,
    "public.signup_ip_hourly_max": 20,
    "public.signup_address_hourly_max": 5,
    "verify.on_subscribe_dns": False,
    "verify.dns_timeout": 2.0,
}

MAX_CSS_CHARS = 64 * 1024
MAX_LOGO_CHARS = 256 * 1024
MAX_DOMAINS = 10_000
# A domain of a block or allow list: labels of letters, digits and hyphens, optionally led by
# `*.` for "and its subdomains". One pass, no nested quantifier.
_DOMAIN = re.compile(r"(\*\.)?[a-z0-9-]{1,63}(\.[a-z0-9-]{1,63})*")
_LOGO_DATA = re.compile(r"data:image/(png|jpeg|gif|webp|svg\+xml);base64,[A-Za-z0-9+/=]+")
# What custom CSS may not contain: a way to load another site's content, to run script, or to
# leave the stylesheet if it were ever placed in a page.
_CSS_REFUSED = re.compile(
    r"@import|expression\s*\(|javascript:|behavior\s*:|-moz-binding|<|\\", re.IGNORECASE
)
# A url(...) reference; its target is checked in code (ours or a data: image only).
_CSS_URL = re.compile(r"url\(([^)]{0,4096})", re.IGNORECASE)


def _css_problem(css: str) -> str | None:
    """The first part of `css` that custom CSS may not contain, or None."""
    found = _CSS_REFUSED.search(css)
    if found is not None:
        return found.group(0)
    for match in _CSS_URL.finditer(css):
        target = match.group(1).strip().strip("'\"").strip()
        local = target.startswith("/") and not target.startswith("//")
        if not (local or target.startswith(("data:image/", "#"))):
            return match.group(0)[:40]
    return None


_boolean = setting_check(bool, "must be true or false")


def _integer(low: int, high: int) -> Callable[[str, Any], int]:
    check: Callable[[str, Any], int] = setting_check(
        Annotated[int, Field(ge=low, le=high)], f"must be a whole number from {low} to {high}"
    )
    return check


# A whole number of seconds is a number of seconds too (read as a float).
_seconds = setting_check(
    Annotated[float, Field(ge=0.1, le=10)], "must be a number of seconds from 0.1 to 10"
)


def _site_name(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise InvalidInput(key, "must be a name of 1 to 200 characters")
    return value.strip()


def _logo(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidInput(key, "must be text")
    text: str = value.strip()
    if not text:
        return ""
    if len(text) > MAX_LOGO_CHARS:
        raise InvalidInput(key, f"longer than {MAX_LOGO_CHARS} characters")
    if _LOGO_DATA.fullmatch(text):
        return text
    if text.startswith("/") and not text.startswith("//") and "\\" not in text:
        if any(ord(ch) < 33 for ch in text):
            raise InvalidInput(key, "a path must not contain spaces or control characters")
        return text
    raise InvalidInput(
        key,
        "give a data:image/...;base64, URL or a path on this server (the public pages load "
        "images from this server only)",
    )


def normalize_domain(domain: str) -> str:
    """A domain as the block and allow lists keep it: lower case, without `@` or a final dot."""
    return domain.strip().lower().lstrip("@").rstrip(".")


def _domains(key: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(key, "must be a list of domains")
    if len(value) > MAX_DOMAINS:
        raise InvalidInput(key, f"at most {MAX_DOMAINS} domains")
    out: list[str] = []
    for raw in value:
        domain = normalize_domain(raw)
        try:
            ascii_domain = domain.encode("idna").decode("ascii") if domain else ""
        except UnicodeError:
            ascii_domain = ""
        if len(ascii_domain) > 253 or not _DOMAIN.fullmatch(ascii_domain):
            raise InvalidInput(key, f"{raw[:100]!r} is not a domain")
        out.append(ascii_domain)
    return list(dict.fromkeys(out))


def _captcha(key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidInput(key, 'must be an object like {"altcha": {"enabled": true}}')
    unknown = set(value) - {"altcha", "hcaptcha"}
    if unknown:
        raise InvalidInput(f"{key}.{sorted(unknown)[0]}", "unknown captcha")
    hcaptcha = value.get("hcaptcha")
    if isinstance(hcaptcha, Mapping) and hcaptcha.get("enabled"):
        raise InvalidInput(f"{key}.hcaptcha", "third-party captchas are not supported; use altcha")
    altcha = value.get("altcha", {})
    if not isinstance(altcha, Mapping):
        raise InvalidInput(f"{key}.altcha", "must be an object")
    enabled = _boolean(f"{key}.altcha.enabled", altcha.get("enabled", False))
    complexity = _integer(1000, 10_000_000)(
        f"{key}.altcha.complexity", altcha.get("complexity", 100000)
    )
    return {"altcha": {"enabled": enabled, "complexity": complexity}}


def _css(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidInput(key, "must be text")
    if len(value) > MAX_CSS_CHARS:
        raise InvalidInput(key, f"longer than {MAX_CSS_CHARS} characters")
    found = _css_problem(value)
    if found is not None:
        raise InvalidInput(
            key,
            f"{found[:40]!r} is not allowed in custom CSS (no imports, scripts, "
            "markup or resources from other sites)",
        )
    return value


# 0 (or null) is no template: stmails makes one on first use.
_optional_id = setting_check(
    Annotated[Annotated[int, Field(ge=1)] | None, BeforeValidator(lambda v: None if v == 0 else v)],
    "must be a template id or null",
)


_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "app.site_name": _site_name,
    "app.logo_url": _logo,
    "app.optin_template_id": _optional_id,
    "privacy.domain_blocklist": _domains,
    "privacy.domain_allowlist": _domains,
    "security.captcha": _captcha,
    "appearance.public.custom_css": _css,
    "public.optin_mail_interval_minutes": _integer(0, 1440),
    "public.optin_mail_daily_max": _integer(1, 100),
    "public.signup_ip_hourly_max": _integer(1, 100_000),
    "public.signup_address_hourly_max": _integer(1, 1000),
    "verify.dns_timeout": _seconds,
}
_CHECKS.update({key: _boolean for key, default in DEFAULTS.items() if isinstance(default, bool)})


def owns(key: str) -> bool:
    """Whether `key` is one of the public pages' settings."""
    return key in _CHECKS


def validate(key: str, value: Any) -> Any:
    """The value to store for `key`, normalized; InvalidInput naming the key when it is bad."""
    return _CHECKS[key](key, value)


def css_is_safe(css: str) -> bool:
    """Whether stored custom CSS still passes the check (a value written behind the API's
    back is not served)."""
    return len(css) <= MAX_CSS_CHARS and _css_problem(css) is None
