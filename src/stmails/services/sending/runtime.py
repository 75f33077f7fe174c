"""What every sending process (the sender loop, the relay, the web's direct send) reads at
run time: the sending configuration from the settings table and the envelope senders it gives.

These lived in `workers/sender.py`; web and CLI import them from here so that they need no
worker module (the worker re-exports them for old callers).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from stmails.services import settings as settings_service
from stmails.services.sending.config import SendingConfig
from stmails.services.sending.envelope import ReturnPaths, VerpMaker, verp_maker

__all__ = ["VerpMaker", "load_config", "return_path_for", "verp_maker"]


def return_path_for(config: SendingConfig, verp: VerpMaker | None) -> ReturnPaths:
    """The envelope senders of `config` (see `services.sending.envelope` for the precedence):
    VERP-encoded when `sending.verp` is on and `verp` is given.

    Called with (campaign id, subscriber id) it answers the sender of a message that neither
    sets its own nor goes through a server with a Return-Path: the bounce address, or '' for
    the From address. A bounce address whose local part is too long for a token (over
    `MAX_PREFIX` octets) is used as it is, with a warning: mail must go out with a valid
    return path (the settings API refuses such an address while VERP is on).
    """
    return ReturnPaths(
        bounce_address=config.bounce_address,
        server_return_paths=config.server_return_paths,
        needs_default=config.needs_default_sender,
        verp=verp if config.verp else None,
    )


def load_config(session: Session, root_url: str) -> SendingConfig:
    """The sending configuration from the settings table; InvalidInput naming the setting
    when a stored value does not validate."""
    return SendingConfig.from_settings(settings_service.get_all(session), root_url=root_url)
