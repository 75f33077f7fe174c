"""The VERP codec now lives in `stmails.core.verp`; this module re-exports it for old callers."""

from stmails.core.verp import (
    DEFAULT_PREFIX,
    MAX_CAMPAIGN_ID,
    MAX_LOCAL_PART,
    MAX_PREFIX,
    MAX_SUBSCRIBER_ID,
    TOKEN_LENGTH,
    VerpResolver,
    VerpToken,
    find_token,
    make_address,
    make_token,
    verify_token,
)

__all__ = [
    "DEFAULT_PREFIX",
    "MAX_CAMPAIGN_ID",
    "MAX_LOCAL_PART",
    "MAX_PREFIX",
    "MAX_SUBSCRIBER_ID",
    "TOKEN_LENGTH",
    "VerpResolver",
    "VerpToken",
    "find_token",
    "make_address",
    "make_token",
    "verify_token",
]
