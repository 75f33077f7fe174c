"""Disposable domains, role accounts and typo suggestions."""

from __future__ import annotations

import pytest

from stmails.verify import DisposableDomains, TypoSuggester, default_suggester, is_role
from stmails.verify.disposable import default_disposable_domains
from stmails.verify.typo import KNOWN_MAILBOX_DOMAINS, osa_distance


def test_disposable_matches_the_registrable_domain_and_honours_the_allowlist() -> None:
    lists = DisposableDomains(["throwaway.example", "burner.example"], ["ok.burner.example"])
    assert lists.is_disposable("throwaway.example")
    assert lists.is_disposable("x.y.THROWAWAY.example")
    assert not lists.is_disposable("ok.burner.example")
    assert not lists.is_disposable("a.ok.burner.example")
    assert lists.is_disposable("bad.burner.example")
    assert not lists.is_disposable("example")
    assert not lists.is_disposable("notthrowaway.example")


def test_the_packaged_list_knows_common_throwaway_services() -> None:
    packaged = default_disposable_domains()
    assert packaged.is_disposable("mailinator.com")
    assert packaged.is_disposable("yopmail.com")
    assert not packaged.is_disposable("gmail.com")


@pytest.mark.parametrize("local", ["info", "Admin", "postmaster", "sales+eu", "no-reply"])
def test_role_accounts(local: str) -> None:
    assert is_role(local)


@pytest.mark.parametrize("local", ["john", "information", "adminton", "j.info"])
def test_personal_accounts(local: str) -> None:
    assert not is_role(local)


@pytest.mark.parametrize(
    ("domain", "suggestion"),
    [
        ("gmial.com", "gmail.com"),
        ("hotmial.com", "hotmail.com"),
        ("yaho.com", "yahoo.com"),
        ("outlok.com", "outlook.com"),
        ("gmail.con", "gmail.com"),
        ("gmial.con", "gmail.com"),
        ("yahooo.com", "yahoo.com"),
        ("acme.con", "acme.com"),
    ],
)
def test_typos_are_corrected(domain: str, suggestion: str) -> None:
    assert default_suggester().suggest(domain) == suggestion


@pytest.mark.parametrize(
    "domain",
    ["proton.me", "hey.com", "pm.me", "mailw.com", "ymail.com", "email.com", "acme-corp.com",
     "gmx.dr", "hotmail.cz", "yandex.ua", "outlook.jp"],
)  # fmt: skip
def test_real_domains_short_names_and_ties_abstain(domain: str) -> None:
    assert default_suggester().suggest(domain) is None


def test_a_tie_between_two_providers_abstains() -> None:
    suggester = TypoSuggester(["abcdef.com", "abcdeg.com"])
    assert suggester.suggest("abcdex.com") is None
    assert TypoSuggester(["abcdef.com"]).suggest("abcdex.com") == "abcdef.com"


def test_extra_known_domains_are_left_alone() -> None:
    assert TypoSuggester(KNOWN_MAILBOX_DOMAINS, ["gmial.com"]).suggest("gmial.com") is None


def test_osa_distance() -> None:
    assert osa_distance("gmial", "gmail") == 1
    assert osa_distance("kitten", "sitting") == 3
    assert osa_distance("", "abc") == 3
