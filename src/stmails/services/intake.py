"""Verification on the way in: what subscriber creation and the CSV import do with an address.

The run-time setting `verify.on_subscribe` decides (see `services.settings`):

- `off` (the default): addresses are stored as before (syntax checked by `subscribers`).
- `flag`: the offline verification stages run (syntax, disposable, role, typo; no network, so
  the gate costs microseconds inside the transaction). When they find something, the verdict
  is stored in the subscriber's attributes under `_verify`, e.g.
  `{"result": "risky", "reasons": ["role"]}`, so such subscribers can be found with the query
  API: `subscribers.attribs->'_verify'->>'result' = 'risky'`. A valid address gets no `_verify`.
- `reject`: as `flag`, and an address with any reason listed in `verify.reject` (default
  `syntax`, `disposable`) is refused with `AddressRefused` naming the address and the reasons.

While the gate is on, `_verify` belongs to the server: one sent by the caller is replaced.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from stmails.services import settings
from stmails.services.errors import InvalidInput
from stmails.verify import IntakePolicy, verify_on_the_way_in
from stmails.verify.result import Reason, combine

VERIFY_ATTRIB = "_verify"

# The setting decides which reasons refuse an address, so the gate itself refuses none and
# reports every reason.
_REPORT_EVERYTHING = IntakePolicy(reject=frozenset())


class AddressRefused(InvalidInput):
    """`verify.on_subscribe` is `reject` and the address has a reason in `verify.reject`."""


@dataclass(frozen=True, slots=True)
class IntakeCheck:
    """The gate in force: `mode` is off, flag or reject; `reject` the refusing reason codes."""

    mode: str = "off"
    reject: frozenset[str] = frozenset()


def current(session: Session) -> IntakeCheck:
    """The gate the settings ask for. A stored value that no longer validates reads as its
    default, so a bad row never stops subscribers from being added."""
    mode = settings.get_valid(session, "verify.on_subscribe")
    reject = settings.get_valid(session, "verify.reject")
    return IntakeCheck(mode=mode, reject=frozenset(reject))


def screen(
    check: IntakeCheck, email: str, attribs: Mapping[str, Any] | None
) -> Mapping[str, Any] | None:
    """The attributes to store for a subscriber arriving with `email` and `attribs`.

    `off`: `attribs` unchanged. Otherwise a copy with the verdict under `_verify` when the
    offline stages found something (and without `_verify` when they did not); raises
    `AddressRefused` in `reject` mode when a found reason is in `check.reject`.
    """
    if check.mode == "off":
        return attribs
    _, flags = verify_on_the_way_in(email.strip(), _REPORT_EVERYTHING)
    refused = [flag for flag in flags if flag in check.reject] if check.mode == "reject" else []
    if refused:
        shown = email.strip()[:320]
        raise AddressRefused("email", f"{shown!r} refused by verification ({', '.join(refused)})")
    stored = dict(attribs or {})
    stored.pop(VERIFY_ATTRIB, None)
    if flags:
        verdict = combine(Reason(flag) for flag in flags)
        stored[VERIFY_ATTRIB] = {"result": verdict.value, "reasons": list(flags)}
    return stored
