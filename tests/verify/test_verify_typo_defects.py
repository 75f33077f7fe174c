"""Issue 17's verification defects (held-out cases) and the suggester's general contract:
silent when unsure, never a wrong suggestion, never a change to a real common domain."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stmails.verify import OfflineVerifier, Policy, Reason, Verdict, check_syntax
from stmails.verify.tlds import delegated_tlds, is_delegated_tld, tld_list_version
from stmails.verify.typo import (
    DOMINANT_MAILBOX_DOMAINS,
    KNOWN_MAILBOX_DOMAINS,
    REGIONAL_MAILBOX_DOMAINS,
    TLD_TYPOS,
    TypoSuggester,
    default_suggester,
    osa_distance,
)


@pytest.mark.parametrize("address", ["z@co.c", "+@b.c", "test@iana.a", "a@example.x"])
def test_a_one_letter_top_level_name_fails_the_mailing_policy(address: str) -> None:
    result = check_syntax(address)
    assert not result.valid
    assert result.error is not None and "one character" in result.error
    # The literal grammar allows any label; only the mailing policy knows no such TLD exists.
    assert check_syntax(address, Policy.RFC5321).valid


def test_the_offline_verifier_calls_a_one_letter_tld_invalid_on_both_paths() -> None:
    verifier = OfflineVerifier()
    for result in (verifier.verify("z@co.c"), verifier.verify_full("z@co.c")):
        assert result.result is Verdict.INVALID
        assert Reason.SYNTAX in result.reasons
    # Two letters are a country code: still fine.
    assert verifier.verify("z@example.co").result is Verdict.VALID


@pytest.mark.parametrize(
    ("address", "suggestion"),
    [
        ("jane@hotmail.co", "jane@hotmail.com"),
        ("jane@yahoo.co", "jane@yahoo.com"),
        ("jane@hotmail.cm", "jane@hotmail.com"),
        ("jane@comcast.nry", "jane@comcast.net"),
        ("jane@yahoo.co.ukk", "jane@yahoo.co.uk"),
    ],
)
def test_issue_17_typo_cases_get_their_suggestion(address: str, suggestion: str) -> None:
    result = OfflineVerifier().verify(address)
    assert result.suggestion == suggestion
    assert Reason.TYPO in result.reasons


def test_the_shipped_tld_list_is_iana_s() -> None:
    names = delegated_tlds()
    assert tld_list_version() == "2026102900"
    assert len(names) > 1400
    assert {"com", "net", "org", "co", "cm", "ca", "uk", "xn--fiqs8s"} <= names
    assert not {"nry", "con", "test", "invalid", "localhost"} & names
    # No delegated TLD is shorter than two characters.
    assert min(len(n) for n in names) == 2
    assert is_delegated_tld("COM") and not is_delegated_tld("cmo")


def test_every_corrected_tld_typo_is_undelegated() -> None:
    # A delegated TLD holds real domains: correcting it would break a real address.
    for typo in TLD_TYPOS:
        assert not is_delegated_tld(typo.rsplit(".", 1)[-1]), typo


def test_dominant_providers_are_known_providers() -> None:
    assert DOMINANT_MAILBOX_DOMAINS <= KNOWN_MAILBOX_DOMAINS


@pytest.mark.parametrize(
    "domain",
    [
        *sorted(KNOWN_MAILBOX_DOMAINS | REGIONAL_MAILBOX_DOMAINS),
        *["github.com", "example.org", "mit.edu", "gov.uk", "comcast.com", "yahoo.net"],
    ],
)
def test_a_real_common_domain_is_never_changed(domain: str) -> None:
    # Known providers are never touched; the others are real domains at delegated TLDs with
    # no provider within one edit (comcast.com is two edits from comcast.net).
    assert default_suggester().suggest(domain) is None


@pytest.mark.parametrize("domain", ["example.nry", "gmail.nry", "gmial.nry", "comcast.xxxxx"])
def test_an_undelegated_tld_far_from_the_provider_or_unknown_name_abstains(domain: str) -> None:
    assert default_suggester().suggest(domain) is None


def test_a_tie_between_two_ordinary_providers_still_abstains() -> None:
    suggester = TypoSuggester(["abcdef.com", "abcdef.ca"])
    assert suggester.suggest("abcdef.co") is None
    # The same tie with a dominant provider goes to the dominant one.
    assert default_suggester().suggest("hotmail.co") == "hotmail.com"
    # Two dominant providers tied: abstain.
    two = TypoSuggester(["gmail.com", "hotmail.com", "ymail.com"])
    assert two.suggest("gmail.com") is None


_NAMES = st.text(alphabet="abcde", min_size=5, max_size=7)
_TLDS = st.sampled_from(["com", "net", "org", "de", "ca"])
_DOMAINS = st.builds(lambda name, tld: f"{name}.{tld}", _NAMES, _TLDS)


@settings(max_examples=300, deadline=None)
@given(targets=st.sets(_DOMAINS, min_size=1, max_size=12), typed=_DOMAINS)
def test_a_suggestion_is_the_only_target_one_edit_away(targets: set[str], typed: str) -> None:
    suggestion = TypoSuggester(targets).suggest(typed)
    distances = {t: osa_distance(typed, t) for t in targets}
    if typed in targets or min(distances.values()) > 1:
        # A real target is never changed; farther than one edit is too far (delegated TLDs).
        assert suggestion is None
    elif sum(1 for d in distances.values() if d == 1) > 1:
        # A tie between ordinary providers: silence.
        assert suggestion is None
    else:
        assert suggestion is not None and distances[suggestion] == 1


@settings(max_examples=300, deadline=None)
@given(typed=_DOMAINS | st.builds(lambda n: f"{n}.nry", _NAMES))
def test_the_default_suggester_keeps_its_distance_bounds(typed: str) -> None:
    suggestion = default_suggester().suggest(typed)
    if suggestion is None:
        return
    tld = typed.rsplit(".", 1)[-1]
    if is_delegated_tld(tld):
        assert osa_distance(typed, suggestion) == 1
    else:
        # Rule 4: the same name, another suffix at most two edits away.
        assert suggestion.split(".", 1)[0] == typed.split(".", 1)[0]
        assert osa_distance(typed, suggestion) <= 2
