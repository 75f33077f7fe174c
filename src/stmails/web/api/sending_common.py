"""What the sending routes share: the sending settings, the SMTP pool and the return path."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from stmails.db.handles import Session
from stmails.ingest.message_ids import make_message_id
from stmails.services import bounces, dkim_keys
from stmails.services.errors import InvalidInput
from stmails.services.sending.config import SendingConfig
from stmails.services.sending.direct import DirectSender
from stmails.services.sending.routing import DEFAULT_MESSENGER, RoutedPools
from stmails.services.sending.runtime import load_config, return_path_for, verp_maker
from stmails.services.sending.signing import Transport, signed
from stmails.web.deps import app_state
from stmails.web.errors import ApiError
from stmails.web.responses import JSONResponse, data

POOL_KEY = "sending.smtp_pool"


def sending_config(request: Request, session: Session) -> SendingConfig:
    """The sending settings as stored now; 503 when they cannot work (stored before they were
    validated): not the caller's fault."""
    try:
        return load_config(session, app_state(request).settings.root_url)
    except InvalidInput as exc:
        raise ApiError(503, f"the sending settings cannot work: {exc}") from None


def direct_sender(
    request: Request, config: SendingConfig, messenger: str = DEFAULT_MESSENGER
) -> DirectSender:
    """A sender over the app's shared SMTP pools (rebuilt when the smtp settings change) that
    DKIM-signs with the active keys and sends each message through the servers of `messenger`
    that take its From address; 503 when no SMTP server is enabled."""
    if not config.smtp:
        raise ApiError(503, "no SMTP server is enabled (settings: smtp)", {"Retry-After": "60"})
    state = app_state(request)
    # setdefault: two requests at once share one set of pools.
    pools = state.extras.setdefault(POOL_KEY, RoutedPools())
    assert isinstance(pools, RoutedPools)
    secret = state.settings.resolved_secret_key().encode()
    # The keys as stored now: a key activated a moment ago signs this request's mail.
    with state.readonly_sessions() as session:
        signer = dkim_keys.load_signer(session, secret)

    def sign(send: Transport) -> Transport:
        return signed(send, signer)

    return DirectSender(
        config,
        sign(pools.pool(config.smtp, config.smtp).send),
        bounces.record,
        return_path_for(config, verp_maker(secret)),
        # Signed Message-IDs: the mailbox scanner attributes their bounces (bounce.mailbox_trust).
        lambda domain, recipient: make_message_id(secret, domain, recipient),
        route=pools.router(config.smtp, messenger, sign),
    )


def close_pool(request_app_state: object) -> None:
    """Closes the shared SMTP pool (at shutdown)."""
    extras = getattr(request_app_state, "extras", {})
    pools = extras.pop(POOL_KEY, None)
    if isinstance(pools, RoutedPools):
        pools.close()


def per_recipient(results: list[dict[str, Any]]) -> JSONResponse:
    """200 when at least one recipient was sent to (or may have been: `in_doubt`), else 422;
    every result listed either way."""
    sent = sum(1 for r in results if r["status"] == "sent")
    doubtful = sum(1 for r in results if r["status"] == "in_doubt")
    payload = {
        "sent": sent,
        "in_doubt": doubtful,
        "refused": len(results) - sent - doubtful,
        "results": results,
    }
    if sent or doubtful:
        return data(payload)
    first = results[0]
    return JSONResponse(
        {
            "message": f"no recipient was sent to: {first['recipient']}: {first.get('error', '')}",
            "data": payload,
        },
        status_code=422,
    )


def listmonk_answer(request: Request, results: list[dict[str, Any]]) -> JSONResponse:
    """listmonk's answer to a send (`POST /api/tx`, a campaign's test send): `{"data": true}`
    once every recipient was sent to (or may have been: `in_doubt`). Otherwise an error naming
    each recipient not sent to and why, with the per-recipient results in `data`: 400 when every
    such recipient was refused or rejected for good (the caller's to fix), 503 when a send failed
    for a reason that may pass (the server or the network), as listmonk answers 500 there.
    `?results=true` gives stmails' per-recipient results instead (`per_recipient`)."""
    if request.query_params.get("results", "").lower() in {"1", "true", "yes"}:
        return per_recipient(results)
    missed = [r for r in results if r["status"] not in ("sent", "in_doubt")]
    if not missed:
        return data(True)
    temporary = any(
        r["status"] == "failed" and not str(r.get("error", "")).startswith(("hard", "render error"))
        for r in missed
    )
    message = "; ".join(f"{r['recipient']}: {r.get('error') or r['status']}" for r in missed[:20])
    if len(missed) > 20:
        message += f"; and {len(missed) - 20} more"
    sent = len(results) - len(missed)
    payload = {"message": f"not sent to {len(missed)} of {len(results)} ({sent} sent): {message}"}
    return JSONResponse(
        {**payload, "data": {"results": results}},
        status_code=503 if temporary else 400,
        headers={"Retry-After": "30"} if temporary else None,
    )
