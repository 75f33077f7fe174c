"""Every regular expression that sees untrusted text runs in linear time.

The patterns are collected from the modules of `stmails.core`, `stmails.verify` and
`stmails.ingest` (module globals, the members of tuples, lists, sets and dicts held there, and
class attributes), so a pattern added later is covered without touching this file. Each one is
run over long runs of every ASCII character, runs ended by another character (the shape that
makes a backtracking pattern retry every split), alternations of common separators with letters
and digits, and runs after a few lead-ins that bounce text opens a match with.

The budget cannot flake on a loaded machine: it is not a wall-clock limit but the ratio of
process CPU time at 4n to the time at n characters. Linear work gives about 4; quadratic work
gives 16 and cubic 64. Inputs cheaper than a floor at n are accepted without the second run;
an input that takes a large fraction of a second at n (linear patterns take microseconds
there) fails without the run at 4n, which could take hours.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from worst_cases import cpu_seconds

PACKAGES = ("stmails.core", "stmails.verify", "stmails.ingest")

# Patterns only ever applied at one position (re.match / fullmatch at a given offset, never
# search or finditer), with why; they are measured the way the code uses them.
ANCHORED_USE: dict[str, str] = {
    # Matched right after a command word, over at most 16 characters.
    "stmails.core.fields._COMMAND_AFTER": "match",
    # Syntax checks of one atom, label or number: the whole string must match.
    "stmails.verify.syntax._ASCII_ATOM": "fullmatch",
    "stmails.verify.syntax._LDH_LABEL": "fullmatch",
    "stmails.verify.syntax._ALPHA_TLD": "fullmatch",
    "stmails.verify.syntax._SNUM": "fullmatch",
    "stmails.verify.syntax._HEX4": "fullmatch",
    # A configuration value (an interval) matched as a whole.
    "stmails.ingest.mailbox.config._INTERVAL": "fullmatch",
    # Values of a native API event checked whole.
    "stmails.ingest.native._SOURCE_RE": "fullmatch",
    "stmails.ingest.native._REASON_RE": "fullmatch",
    # The local part of a verified address, matched as a whole.
    "stmails.verify.syntax.COMMON_ADDRESS": "fullmatch",
}

SIZE = 2048
# Below this much CPU time at SIZE characters an input is not worth a second measurement.
FLOOR = 0.0005
# Linear scaling gives 4 from n to 4n; quadratic gives 16.
MAX_RATIO = 9.0
# No linear pattern needs this much CPU time for SIZE characters (they take microseconds): an
# input that does is failed at once rather than run again four times larger.
CEILING = 0.25

_SEPARATORS = " \t\n-=.:;,@<>\"'()[]_/|*#~+!?%&"
_LEAD_INS = ("<", "a@", "to: ", "550 ", "5.1.1 ", "---", "=?utf-8?q?", "rfc822; ", ">>> ")


def _patterns_of(value: object) -> Iterator[re.Pattern[str] | re.Pattern[bytes]]:
    if isinstance(value, re.Pattern):
        yield value
    elif isinstance(value, (tuple, list, set, frozenset)):
        for item in value:
            if isinstance(item, re.Pattern):
                yield item
    elif isinstance(value, dict):
        for item in value.values():
            if isinstance(item, re.Pattern):
                yield item


def collect() -> dict[str, re.Pattern[str] | re.Pattern[bytes]]:
    """Every compiled pattern reachable from the packages' modules, under the first name found
    for it (a pattern imported elsewhere is the same object)."""
    found: dict[str, re.Pattern[str] | re.Pattern[bytes]] = {}
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        modules = [package] + [
            importlib.import_module(info.name)
            for info in pkgutil.walk_packages(package.__path__, package_name + ".")
        ]
        for module in modules:
            for name, value in sorted(vars(module).items()):
                holders = [(name, value)]
                if isinstance(value, type) and value.__module__ == module.__name__:
                    holders = [(f"{name}.{attr}", item) for attr, item in vars(value).items()]
                for label, item in holders:
                    for index, pattern in enumerate(_patterns_of(item)):
                        suffix = "" if isinstance(item, re.Pattern) else f"[{index}]"
                        found[f"{module.__name__}.{label}{suffix}"] = pattern
    return found


def _unique(
    found: dict[str, re.Pattern[str] | re.Pattern[bytes]],
) -> dict[str, re.Pattern[str] | re.Pattern[bytes]]:
    first: dict[int, str] = {}
    for label, pattern in found.items():
        first.setdefault(id(pattern), label)
    return {label: found[label] for label in first.values()}


ALL_NAMES = collect()
PATTERNS = _unique(ALL_NAMES)
# How each pattern is applied, whichever of its names ANCHORED_USE lists.
METHODS = {
    id(ALL_NAMES[name]): method for name, method in ANCHORED_USE.items() if name in ALL_NAMES
}


def _shapes() -> Iterator[tuple[str, Callable[[int], str]]]:
    for code in range(128):
        char = chr(code)
        stopper = "y" if char == "x" else "x"
        yield f"run of {code:#x}", lambda n, c=char: c * n
        yield f"run of {code:#x} then {stopper}", lambda n, c=char, s=stopper: c * n + s
        yield f"run of {code:#x} then newline", lambda n, c=char: c * n + "\n"
    for separator in _SEPARATORS:
        for other in ("a", "1"):
            yield (
                f"{other!r}{separator!r} repeated",
                lambda n, s=separator, o=other: (o + s) * (n // 2),
            )
    for lead in _LEAD_INS:
        for char in "a- .@<:1\t":
            yield (
                f"{lead!r} then a run of {char!r}",
                lambda n, p=lead, c=char: p + c * n + "!",
            )


SHAPES = list(_shapes())


def _runner(name: str, pattern: re.Pattern[str] | re.Pattern[bytes]) -> Callable[[str], object]:
    method = METHODS.get(id(pattern), "search")
    if isinstance(pattern.pattern, bytes):
        call = getattr(pattern, method)
        return lambda text: call(text.encode("latin-1"))
    call = getattr(pattern, method)
    return lambda text: call(text)


def test_every_anchored_entry_names_a_collected_pattern() -> None:
    assert set(ANCHORED_USE) <= set(ALL_NAMES)
    assert set(ANCHORED_USE.values()) <= {"match", "fullmatch"}


def test_patterns_are_collected_from_every_package() -> None:
    for package in PACKAGES:
        assert any(name.startswith(package + ".") for name in PATTERNS), package


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_pattern_time_grows_linearly(name: str) -> None:
    run = _runner(name, PATTERNS[name])
    for label, build in SHAPES:
        small = cpu_seconds(run, build(SIZE), 1)
        if small < FLOOR:
            continue
        assert small < CEILING, f"{name} on {label}: {small:.2f} s at {SIZE} characters"
        small = cpu_seconds(run, build(SIZE))
        large = cpu_seconds(run, build(4 * SIZE))
        if large > MAX_RATIO * small:
            # Measure both again before judging: one slow sample is not a trend.
            small = cpu_seconds(run, build(SIZE), 5)
            large = cpu_seconds(run, build(4 * SIZE), 5)
        assert large <= MAX_RATIO * max(small, FLOOR), (
            f"{name} on {label}: {small * 1000:.1f} ms at {SIZE} characters, "
            f"{large * 1000:.1f} ms at {4 * SIZE}"
        )
