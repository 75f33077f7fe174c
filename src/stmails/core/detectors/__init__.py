"""The ordered detector registry.

Each detector takes a `Context` and returns None when the message is not in its format, or a
list of findings (possibly empty) when it is. The first detector that returns a list decides;
the order runs from the most specific formats to the generic text reader.
"""

from __future__ import annotations

from collections.abc import Callable

from stmails.core.context import Context
from stmails.core.detectors.amazonses import detect_amazonses
from stmails.core.detectors.fml import detect_fml
from stmails.core.detectors.googlegroups import detect_googlegroups
from stmails.core.finding import Finding
from stmails.core.generic import detect_generic
from stmails.core.standard import (
    detect_arf,
    detect_autoreply,
    detect_complaint_without_arf,
    detect_dsn,
)

Detector = Callable[[Context], "list[Finding] | None"]

# (name, detector) in the order they are tried.
REGISTRY: tuple[tuple[str, Detector], ...] = (
    ("arf", detect_arf),
    ("dsn", detect_dsn),
    ("complaint", detect_complaint_without_arf),
    ("autoreply", detect_autoreply),
    ("googlegroups", detect_googlegroups),
    ("amazonses", detect_amazonses),
    ("fml", detect_fml),
    ("generic", detect_generic),
)
