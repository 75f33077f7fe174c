"""The syntax stage: policies, internationalized forms, length limits, hostile input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stmails.verify import Policy, check_syntax


@pytest.mark.parametrize(
    "address",
    [
        "john.smith@example.com",
        "user+tag@sub.example.co.uk",
        "o'brien@example.ie",
        "x@xn--bcher-kva.example",
        "jöhn@bücher.example",
        "用户@例子.广告",
    ],
)
def test_mailing_policy_accepts_real_mailbox_forms(address: str) -> None:
    assert check_syntax(address).valid, check_syntax(address).error


@pytest.mark.parametrize(
    ("address", "valid_rfc5321"),
    [
        ('"john smith"@example.com', True),
        ("john@[192.0.2.1]", True),
        ("john@[IPv6:2001:db8::1]", True),
        ("john@localhost", True),
        ("john@example.test", True),
        ("john@host.onion", True),
        ("john@example.123", True),
        ("john@[IPv6:1:2:3:4:5:6::8]", False),
        ("john@[300.1.1.1]", False),
        ("john (comment)@example.com", False),
        ("John <john@example.com>", False),
        ("john..smith@example.com", False),
    ],
)
def test_forms_only_rfc5321_accepts(address: str, valid_rfc5321: bool) -> None:
    assert not check_syntax(address).valid
    assert check_syntax(address, Policy.RFC5321).valid is valid_rfc5321


def test_normalized_form_lowercases_the_domain_keeps_the_local_part_and_decodes_a_labels() -> None:
    result = check_syntax("John.Smith@Example.COM")
    assert result.normalized == "John.Smith@example.com"
    idn = check_syntax("x@XN--BCHER-KVA.example")
    assert idn.normalized == "x@bücher.example"
    assert idn.ascii_domain == "xn--bcher-kva.example"
    assert idn.smtputf8 is False
    assert check_syntax("jöhn@example.com").smtputf8 is True


def test_length_limits_apply_to_the_encoded_form() -> None:
    assert check_syntax("a" * 64 + "@example.com").valid
    assert not check_syntax("a" * 65 + "@example.com").valid
    # 33 two-octet characters: 33 characters, but 66 octets on the wire.
    assert not check_syntax("é" * 33 + "@example.com").valid
    assert check_syntax("é" * 32 + "@example.com").valid
    label = "a" * 63
    assert not check_syntax(f"x@{label}.{label}.{label}.{label}.com").valid
    assert not check_syntax(f"x@{'a' * 64}.com").valid


def test_reserved_and_broken_a_labels_are_rejected() -> None:
    assert not check_syntax("me@yy--0.example").valid
    assert not check_syntax("me@xn--example.com").valid
    assert check_syntax("me@c--n.com").valid


@pytest.mark.parametrize(
    "address",
    ["a\u200b@example.com", "a@exa\u202emple.com", "\u0300a@example.com", "a\x00@example.com",
     "a\ud800@example.com", "a\ue000@example.com", "a b@example.com", "a\u2028@example.com"],
)  # fmt: skip
def test_unsafe_characters_are_rejected_under_both_policies(address: str) -> None:
    assert not check_syntax(address).valid
    assert not check_syntax(address, Policy.RFC5321).valid


# No per-example deadline: the machine running the suite may be busy.
@settings(deadline=None)
@given(st.text(max_size=300))
def test_any_string_gets_an_answer_and_an_accepted_one_is_well_formed(text: str) -> None:
    for policy in Policy:
        result = check_syntax(text, policy)
        if result.valid:
            assert result.normalized is not None and "@" in result.normalized
            assert result.ascii_domain is not None and result.ascii_domain.isascii()
        else:
            assert result.error
