"""DKIM signing on the way out: every send path (campaigns, transactional and system mail,
the relay) hands its messages to SMTP through `signed(transport, signer)`.

The signer is loaded from the stored keys when the path starts its work (a campaign pass, a
request, a relayed message), so a key activated by an admin signs from the next one on. A key
that cannot be used makes the message fail with a fatal error (a campaign pauses, a request
answers with the error): mail that should carry a signature never leaves without one.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

from stmails.services.dkim_keys import DkimError, Signer
from stmails.services.sending.messages import Message
from stmails.services.sending.smtp import SendResult

log = logging.getLogger(__name__)

# A per-message transport (`SmtpPool.send`), as `campaigns.Transport`.
Transport = Callable[[Message], SendResult]

__all__ = ["sign_message", "signed"]


def sign_message(signer: Signer, message: Message) -> Message:
    """`message` with a DKIM-Signature by its From domain's active key (unchanged without
    one); DkimError when the key cannot be used."""
    data = signer.sign(message.data)
    if data is message.data:
        return message
    return dataclasses.replace(message, data=data)


def signed(transport: Transport, signer: Signer) -> Transport:
    """`transport` that signs each message first (nothing changes when no domain has a key)."""
    if not signer.domains:
        return transport

    def send(message: Message) -> SendResult:
        try:
            out = sign_message(signer, message)
        except DkimError as exc:
            log.error("not sent to %s: DKIM signing failed: %s", message.recipient, exc)
            return SendResult("error", 0, f"DKIM signing failed: {exc}", "sign", fatal=True)
        return transport(out)

    return send
