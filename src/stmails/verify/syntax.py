"""Address syntax for a mailing system (RFC 5321/6531 envelope addresses, IDNA 2008 domains).

Two policies:

* ``Policy.MAILING`` (the default) accepts only what could be a real public mailbox: a dot-atom
  local part (ASCII or UTF-8 under SMTPUTF8) at a hostname with at least two labels whose top
  label is alphabetic with at least two letters (or an IDNA A-label) and not a special-use name
  (RFC 6761 and friends).
* ``Policy.RFC5321`` accepts the literal RFC 5321 grammar as well: quoted local parts, address
  literals, dotless domains, numeric or hyphenated top labels and special-use names.

Both reject comments, folding white space, obsolete forms, display names, unsafe Unicode and
anything over the length limits, which apply to the encoded form: 64 octets of UTF-8 for the
local part, 253 octets for the A-label domain and 254 for the whole address.

The common case (an ASCII dot-atom at an ASCII hostname) runs through one precompiled regular
expression and a per-domain cache; everything else goes through the full parser below.
"""

from __future__ import annotations

import enum
import functools
import re
import unicodedata
from dataclasses import dataclass

import idna

__all__ = [
    "SPECIAL_USE_TLDS",
    "DomainSyntax",
    "Policy",
    "SyntaxResult",
    "check_domain",
    "check_syntax",
]


class Policy(enum.StrEnum):
    """Which addresses the syntax stage accepts (see the module docstring)."""

    MAILING = "mailing"
    RFC5321 = "rfc5321"


# Top-level names that never hold public mailboxes: RFC 6761 (test, invalid, localhost), RFC 6762
# (local), RFC 7686 (onion), RFC 9476 (alt) and arpa, whose subdomains are infrastructure.
SPECIAL_USE_TLDS = frozenset({"arpa", "invalid", "local", "localhost", "onion", "test", "alt"})

MAX_LOCAL_OCTETS = 64
MAX_DOMAIN_OCTETS = 253
MAX_ADDRESS_OCTETS = 254
MAX_LABEL_OCTETS = 63
MAX_INPUT_CHARS = 1024
MIN_TLD_LENGTH = 2

_ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~-"
# The common case, an ASCII dot-atom local part at LDH labels and dots (the bulk fast path
# in offline.py matches with it too).
COMMON_ADDRESS = re.compile(rf"([{_ATEXT}]+(?:\.[{_ATEXT}]+)*)@([A-Za-z0-9.-]+)")
_ASCII_ATOM = re.compile(rf"[{_ATEXT}]+")
_LDH_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
_ALPHA_TLD = re.compile(r"[a-z]+")
_SNUM = re.compile(r"[0-9]{1,3}")
_HEX4 = re.compile(r"[0-9A-Fa-f]{1,4}")


@dataclass(frozen=True, slots=True)
class SyntaxResult:
    """The syntax stage's answer for one address.

    ``valid`` says whether the policy accepts the exact string. When it does, ``local`` is the
    local part (NFC-normalized, case kept), ``domain`` the lower-case Unicode domain (or the
    address literal), ``ascii_domain`` its A-label form, ``normalized`` their combination and
    ``smtputf8`` whether delivery needs the SMTPUTF8 extension. ``error`` explains a rejection.
    """

    valid: bool
    normalized: str | None = None
    local: str | None = None
    domain: str | None = None
    ascii_domain: str | None = None
    smtputf8: bool = False
    error: str | None = None


@dataclass(frozen=True, slots=True)
class DomainSyntax:
    """A hostname's verdict under both policies, computed once per distinct domain string."""

    mailing_error: str | None
    rfc5321_error: str | None
    unicode_domain: str
    ascii_domain: str

    def error(self, policy: Policy) -> str | None:
        """The reason this domain is rejected under ``policy``, or None when it is accepted."""
        return self.mailing_error if policy is Policy.MAILING else self.rfc5321_error


def _invalid(error: str) -> SyntaxResult:
    return SyntaxResult(valid=False, error=error)


def check_syntax(address: str, policy: Policy = Policy.MAILING) -> SyntaxResult:
    """Decide whether ``address`` is an acceptable recipient address under ``policy``.

    Never raises on any string input (including control characters and lone surrogates).
    """
    # Far past any limit: refuse before parsing, so hostile input costs nothing and never
    # reaches the per-domain cache. (UTS 46 can drop a few characters, hence the margin.)
    if len(address) > MAX_INPUT_CHARS:
        return _invalid("the address is longer than 254 octets")
    match = COMMON_ADDRESS.fullmatch(address)
    if match is not None:
        local, domain_text = match.group(1), match.group(2)
        if len(local) > MAX_LOCAL_OCTETS:
            return _invalid("the local part is longer than 64 octets")
        return _with_domain(local, len(local), check_domain(domain_text), policy)
    return _check_unusual(address, policy)


def _with_domain(
    local: str, local_octets: int, domain: DomainSyntax, policy: Policy
) -> SyntaxResult:
    """Combines an accepted local part with a domain verdict and applies the total length."""
    error = domain.error(policy)
    if error is not None:
        return _invalid(error)
    return _accepted(local, local_octets, domain.unicode_domain, domain.ascii_domain)


def _accepted(local: str, local_octets: int, domain: str, ascii_domain: str) -> SyntaxResult:
    if local_octets + 1 + len(ascii_domain) > MAX_ADDRESS_OCTETS:
        return _invalid("the address is longer than 254 octets")
    return SyntaxResult(
        valid=True,
        normalized=f"{local}@{domain}",
        local=local,
        domain=domain,
        ascii_domain=ascii_domain,
        smtputf8=not local.isascii(),
    )


@functools.lru_cache(maxsize=65536)
def check_domain(domain: str) -> DomainSyntax:
    """Checks a hostname (ASCII or Unicode, any case) under both policies.

    Cached: bulk lists repeat the same few thousand domains, so each is analysed once.
    """
    if not domain:
        return DomainSyntax("the domain is empty", "the domain is empty", "", "")
    if domain.isascii():
        ascii_domain = domain.lower()
    else:
        unsafe = _unsafe_character(domain, per_label=True)
        if unsafe is not None:
            return _bad_domain(domain, f"the domain contains {unsafe}")
        try:
            ascii_domain = idna.encode(domain, uts46=True, std3_rules=True).decode("ascii")
        except (idna.IDNAError, UnicodeError, ValueError) as exc:
            return _bad_domain(domain, f"the domain is not a valid IDNA 2008 name ({exc})")
    error = _ascii_hostname_error(ascii_domain)
    if error is not None:
        return _bad_domain(domain, error)
    unicode_domain = ascii_domain
    if "xn--" in ascii_domain:
        try:
            unicode_domain = idna.decode(ascii_domain)
        except (idna.IDNAError, UnicodeError, ValueError) as exc:
            return _bad_domain(domain, f"the domain has an invalid A-label ({exc})")
    labels = ascii_domain.split(".")
    tld = labels[-1]
    mailing_error: str | None = None
    if len(labels) < 2:
        mailing_error = "the domain has no dot (a mailbox needs a public hostname)"
    elif tld in SPECIAL_USE_TLDS:
        mailing_error = f"the domain is under the special-use name .{tld}"
    elif len(tld) < MIN_TLD_LENGTH:
        # Country codes have two letters and generic names three or more: no one-letter
        # top-level domain exists or may be delegated (ICANN's rules for both).
        mailing_error = f"the top-level name .{tld} has one character (no such TLD exists)"
    elif not (_ALPHA_TLD.fullmatch(tld) or tld.startswith("xn--")):
        mailing_error = f"the top-level name .{tld} is not alphabetic"
    return DomainSyntax(mailing_error, None, unicode_domain, ascii_domain)


def _bad_domain(domain: str, error: str) -> DomainSyntax:
    return DomainSyntax(error, error, domain, domain)


def _ascii_hostname_error(ascii_domain: str) -> str | None:
    """Why a lower-case ASCII domain is not a hostname (LDH labels, lengths), or None."""
    if len(ascii_domain) > MAX_DOMAIN_OCTETS:
        return "the domain is longer than 253 octets"
    for label in ascii_domain.split("."):
        if not label:
            return "the domain has an empty label"
        if len(label) > MAX_LABEL_OCTETS:
            return "a domain label is longer than 63 octets"
        if not _LDH_LABEL.fullmatch(label):
            return f"the domain label {label!r} is not letters, digits and inner hyphens"
        # IDNA 2008 reserves every label with "--" in its third and fourth places; only the
        # "xn--" A-labels are in use, and they must decode.
        if label[2:4] == "--" and not label.startswith("xn--"):
            return f"the domain label {label!r} is a reserved LDH label"
        if label.startswith("xn--"):
            try:
                idna.decode(label)
            except (idna.IDNAError, UnicodeError, ValueError):
                return f"the domain label {label!r} is not a valid A-label"
    return None


def _unsafe_character(text: str, *, per_label: bool = False) -> str | None:
    """Names the first character that must not appear in an address, or None.

    Rejected: controls, format characters (zero-width, bidi overrides), surrogates, private
    use, unassigned code points and non-characters (category C*), every kind of space or
    line/paragraph separator (Z*), and a combining mark (M*) that starts the text or a label.
    """
    start = True
    for char in text:
        if char.isascii():
            if not (32 < ord(char) < 127):
                return f"the control character U+{ord(char):04X}"
            start = per_label and char == "."
            continue
        category = unicodedata.category(char)
        if category[0] in "CZ" or (start and category[0] == "M"):
            return f"the unsafe character U+{ord(char):04X} ({category})"
        start = False
    return None


def _check_unusual(address: str, policy: Policy) -> SyntaxResult:
    """The full parser for everything the fast path did not take."""
    if "@" not in address:
        return _invalid("there is no @ sign")
    if address.startswith('"'):
        return _check_quoted(address, policy)
    local, _, domain_text = address.rpartition("@")
    if not local:
        return _invalid("the local part is empty")
    if not domain_text:
        return _invalid("the domain is empty")
    unsafe = _unsafe_character(local)
    if unsafe is not None:
        return _invalid(f"the local part contains {unsafe}")
    # The atoms and the length are judged on both the exact string and its NFC form: the
    # change can hide an ASCII character ("<" + U+0338 becomes one letter), create one
    # (U+037E becomes ";"), or make the encoded form shorter or longer.
    normalized = unicodedata.normalize("NFC", local)
    local_octets = 0
    for form in (local, normalized):
        for atom in form.split("."):
            if not atom:
                return _invalid("the local part has an empty dot-separated part")
            if not _ASCII_ATOM.fullmatch(atom) and any(
                c.isascii() and not _ASCII_ATOM.fullmatch(c) for c in atom
            ):
                return _invalid("the local part has characters outside a dot-atom")
        local_octets = max(local_octets, len(form.encode("utf-8", "surrogatepass")))
    if local_octets > MAX_LOCAL_OCTETS:
        return _invalid("the local part is longer than 64 octets")
    return _with_any_domain(normalized, local_octets, domain_text, policy)


def _with_any_domain(
    local: str, local_octets: int, domain_text: str, policy: Policy
) -> SyntaxResult:
    """Checks a hostname or an address literal after an accepted local part."""
    if not domain_text.startswith("["):
        return _with_domain(local, local_octets, check_domain(domain_text), policy)
    if policy is Policy.MAILING:
        return _invalid("address literals are not accepted for mailing")
    literal_error = _address_literal_error(domain_text)
    if literal_error is not None:
        return _invalid(literal_error)
    return _accepted(local, local_octets, domain_text, domain_text)


def _check_quoted(address: str, policy: Policy) -> SyntaxResult:
    """A quoted local part (RFC 5321 Quoted-string, with UTF-8 text as RFC 6531 allows)."""
    index = 1
    length = len(address)
    while index < length:
        char = address[index]
        if char == "\\":
            if index + 1 >= length or not (32 <= ord(address[index + 1]) <= 126):
                return _invalid("a backslash in the quoted local part escapes an invalid character")
            index += 2
            continue
        if char == '"':
            break
        if char.isascii():
            if not (32 <= ord(char) <= 126):
                return _invalid(f"the quoted local part contains the control U+{ord(char):04X}")
        elif _unsafe_character(char) is not None:
            return _invalid(f"the quoted local part contains {_unsafe_character(char)}")
        index += 1
    else:
        return _invalid("the quoted local part is not closed")
    local = address[: index + 1]
    rest = address[index + 1 :]
    if not rest.startswith("@"):
        return _invalid("the quoted local part is not followed by @")
    if policy is Policy.MAILING:
        return _invalid("quoted local parts are not accepted for mailing")
    local_octets = len(local.encode("utf-8", "surrogatepass"))
    if local_octets > MAX_LOCAL_OCTETS:
        return _invalid("the local part is longer than 64 octets")
    domain_text = rest[1:]
    if not domain_text:
        return _invalid("the domain is empty")
    return _with_any_domain(unicodedata.normalize("NFC", local), local_octets, domain_text, policy)


def _address_literal_error(literal: str) -> str | None:
    """Why ``[...]`` is not an RFC 5321 IPv4 or IPv6 address literal, or None."""
    if not literal.endswith("]"):
        return "the address literal is not closed"
    body = literal[1:-1]
    if body[:5].lower() == "ipv6:":
        return None if _is_rfc5321_ipv6(body[5:]) else "the IPv6 address literal is malformed"
    if _is_rfc5321_ipv4(body):
        return None
    return "the address literal is neither IPv4 nor IPv6"


def _is_rfc5321_ipv4(text: str) -> bool:
    parts = text.split(".")
    return len(parts) == 4 and all(_SNUM.fullmatch(p) and int(p) <= 255 for p in parts)


def _is_rfc5321_ipv6(text: str) -> bool:
    """RFC 5321 section 4.1.3: IPv6-full, IPv6-comp, IPv6v4-full or IPv6v4-comp.

    Stricter than ``ipaddress``: a compressed form may hold at most 6 groups (4 before an IPv4
    tail), so ``::`` never stands for a single group.
    """
    groups_allowed = 8
    if "." in text:
        head, _, ipv4 = text.rpartition(":")
        if not head or not _is_rfc5321_ipv4(ipv4):
            return False
        groups_allowed = 6
        # Give back the colon the split took when it was half of "::", so that the head still
        # reads as compressed ("a1::1.2.3.4" -> "a1::").
        text = head + ":" if head.endswith(":") else head
    if "::" in text:
        if text.count("::") > 1:
            return False
        before, _, after = text.partition("::")
        groups = (before.split(":") if before else []) + (after.split(":") if after else [])
        limit = groups_allowed - 2
    else:
        groups = text.split(":")
        if len(groups) != groups_allowed:
            return False
        limit = groups_allowed
    return len(groups) <= limit and all(_HEX4.fullmatch(g) for g in groups)
