"""listmonk's settings API: `GET`/`PUT /api/settings` (bounce and sending settings and stmails'
additions), `PUT /api/settings/{key}` (one setting; the body is its JSON value), `POST
/api/settings/smtp/test` and `POST /api/settings/bounces/mailbox/test`.

Secrets read as `••••••••`; sending that mask (or an empty string) back keeps the stored secret,
as listmonk does, so a client can GET, change one key and PUT everything back; but only while
the object it belongs to points at the same server (host, port, TLS): a changed target drops it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Depends, Request

from stmails.db.handles import Session
from stmails.services import dkim_keys, mailbox_check, suppression
from stmails.services import settings as settings_service
from stmails.services.dkim_keys import DkimError
from stmails.services.errors import InvalidInput
from stmails.services.mailbox_check import MailboxTestResult
from stmails.services.sending import config as sending_config
from stmails.services.sending.config import SendingConfig, bare_address
from stmails.services.sending.direct import smtp_test_message
from stmails.services.sending.messages import Message
from stmails.services.sending.signing import sign_message
from stmails.services.sending.smtp import SmtpServer, outgoing, try_server
from stmails.web.api import media as media_api
from stmails.web.api.subscribers import JSON_BODY
from stmails.web.body import json_object, json_value, run_db
from stmails.web.deps import app_state, require_user
from stmails.web.errors import ApiError, bad_request
from stmails.web.permissions import require_permission
from stmails.web.responses import JSONResponse, data

log = logging.getLogger("stmails.settings")

router = APIRouter(tags=["settings"], dependencies=[Depends(require_user)])

# What an empty body reads as (null is a value a setting may take).
_NO_VALUE = object()


@router.get(
    "/settings",
    dependencies=[require_permission("settings:get")],
    summary="All settings (secrets masked)",
)
async def get_settings(request: Request) -> JSONResponse:
    def work(session: Session) -> dict[str, Any]:
        return settings_service.masked(settings_service.get_all(session))

    return data(await run_db(request, work))


@router.put(
    "/settings",
    dependencies=[require_permission("settings:manage")],
    summary="Change settings (masked secrets are kept)",
    openapi_extra=JSON_BODY,
)
async def put_settings(request: Request) -> JSONResponse:
    """Validates every key first, then stores them all; 400 naming the key when one is bad."""
    body = await json_object(request)
    # The upload folder or bucket is tried before the write transaction: a slow S3 server
    # never holds the database's write lock.
    await media_api.check_upload_settings(request, body)
    await run_db(request, lambda s: settings_service.update(s, body), write=True)
    return data(True)


@router.post(
    "/settings/smtp/test",
    dependencies=[require_permission("settings:manage")],
    summary="Send a test message through posted SMTP settings",
    openapi_extra=JSON_BODY,
)
async def test_smtp(request: Request) -> JSONResponse:
    """listmonk's SMTP test: the body is one `smtp` server object plus `email`, the address to
    send to. A masked password means the stored one of the server with the same `uuid`, kept
    only while host, port and TLS settings are unchanged. 200 with the server's answer when it
    accepted the message; 422 with the stage and the server's answer or error when not; 400
    for settings that cannot work."""
    body = await json_object(request)
    answer, failure = await run_smtp_test(request, body)
    if answer["sent"]:
        return data(answer)
    return JSONResponse(
        {"message": f"the SMTP test failed at {failure}", "data": answer},
        status_code=422,
    )


async def run_smtp_test(request: Request, body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The SMTP test of `body` (one server object plus `email`), shared with the admin page:
    the server's answer (`sent` true or false) and, when it failed, the stage and error.
    ApiError 400/422 for settings or a recipient that cannot be tried."""
    to = body.pop("email", None)
    if not isinstance(to, str) or not to.strip():
        raise bad_request("email: required: the address to send the test message to")
    try:
        recipient = bare_address(to)
    except ValueError as exc:
        raise bad_request(f"email: {exc}") from None

    def prepare(session: Session) -> tuple[SmtpServer, Message]:
        stored = settings_service.get_all(session)
        entry = settings_service.with_stored_secrets("smtp", body, stored.get("smtp"))
        try:
            server = sending_config.single_server(entry)
            config = SendingConfig.from_settings(stored, app_state(request).settings.root_url)
        except InvalidInput as exc:
            raise bad_request(str(exc)) from None
        hit = suppression.find(session, recipient, list_ids=[])
        if hit is not None:
            since = hit.created_at.date().isoformat()
            raise ApiError(422, f"email: {recipient} is {hit.describe()} since {since}")
        message = smtp_test_message(config, recipient, f"{server.host}:{server.port}")
        # Signed like all mail from this From address, so the test shows what receivers see.
        secret = app_state(request).settings.resolved_secret_key().encode()
        try:
            message = sign_message(dkim_keys.load_signer(session, secret), message)
        except DkimError as exc:
            raise ApiError(422, f"DKIM signing failed: {exc}") from None
        return server, message

    server, message = await run_db(request, prepare)
    result = await asyncio.to_thread(try_server, server, message)
    sender, _ = outgoing(server, message)
    answer = {
        "sent": result.outcome == "sent",
        "outcome": result.outcome,
        "stage": result.stage,
        "code": result.code,
        "message": result.text,
        "mail_from": sender,
        "to": recipient,
    }
    if result.outcome == "sent":
        return answer, ""
    log.info("SMTP test of %s:%s failed: %s", server.host, server.port, result.describe())
    return answer, result.describe()


@router.post(
    "/settings/bounces/mailbox/test",
    dependencies=[require_permission("settings:manage")],
    summary="Connect and log in to a bounce mailbox with posted settings",
    openapi_extra=JSON_BODY,
)
async def test_bounce_mailbox(request: Request) -> JSONResponse:
    """The body is one `bounce.mailboxes` entry (POP3 or IMAP). A masked password means the
    stored one of the mailbox with the same `uuid` (else `name`), kept only while type, host,
    port and TLS settings are unchanged. Connects, logs in, selects the folder and counts the
    messages waiting, changing nothing: 200 with the count; 422 with the server's error; 400
    for an entry that cannot work."""
    body = await json_object(request)
    result = await run_mailbox_test(request, body)
    if result.ok:
        return data(result.as_dict())
    return JSONResponse(
        {"message": f"the mailbox test failed: {result.error}", "data": result.as_dict()},
        status_code=422,
    )


async def run_mailbox_test(request: Request, entry: dict[str, Any]) -> MailboxTestResult:
    """The mailbox test of `entry`, shared with the admin page (ApiError 400 when unusable)."""
    stored = await run_db(request, lambda s: settings_service.get(s, "bounce.mailboxes"))
    try:
        mailbox_check.mailbox_config(mailbox_check.with_stored_password(entry, stored))
    except InvalidInput as exc:
        raise bad_request(str(exc)) from None
    return await asyncio.to_thread(mailbox_check.check_mailbox, entry, stored)


@router.put(
    "/settings/{key}",
    dependencies=[require_permission("settings:manage")],
    summary="Change one setting (the body is its value)",
    openapi_extra=JSON_BODY,
)
async def put_setting(request: Request, key: str) -> JSONResponse:
    """listmonk's `PUT /api/settings/{key}`: validated and stored as one key of `PUT
    /api/settings` would be (400 naming it when bad)."""
    value = await json_value(request, empty=_NO_VALUE)
    if value is _NO_VALUE:
        raise bad_request(f"{key}: give the value as the JSON body")
    body = {key: value}
    await media_api.check_upload_settings(request, body)
    await run_db(request, lambda s: settings_service.update(s, body), write=True)
    return data(True)
