"""The mail the public pages send: the opt-in confirmation and the data export.

Both go through the same path as transactional mail (services.sending.direct): the address is
checked against the suppression list just before SMTP, a 5xx answer is recorded as a bounce,
and the envelope carries our Return-Path (VERP when on) and the subscriber header, so a later
bounce is recorded against the subscriber too. Their links are signed for the subscriber
(services.public.link_token), since no campaign stands behind them.
"""

from __future__ import annotations

import logging

from fastapi import Request

from stmails.db.handles import Session
from stmails.db.models import MailingList, Subscriber
from stmails.services import public
from stmails.services.sending.campaigns import recipient_of
from stmails.services.sending.compose import Links, compile_content
from stmails.services.sending.direct import RecipientResult, Target, tx_content
from stmails.services.sending.messages import Attachment
from stmails.web import i18n
from stmails.web.api.sending_common import direct_sender, sending_config
from stmails.web.public.common import link_secret

log = logging.getLogger("stmails.public")

# The name of the data export's attachment (listmonk's).
EXPORT_FILENAME = "data.json"


def _links(request: Request, root_url: str, subscriber: Subscriber, lists: list[str]) -> Links:
    secret = link_secret(request)
    manage = public.manage_url(root_url, secret, subscriber.uuid)
    return Links(
        unsubscribe_url=manage,
        manage_url=manage,
        optin_url=public.optin_url(root_url, secret, subscriber.uuid, lists),
        archive_url=f"{root_url.rstrip('/')}/archive",
    )


def _report(kind: str, subscriber: Subscriber, results: list[RecipientResult]) -> bool:
    sent = False
    for result in results:
        if result.status == "sent":
            sent = True
            log.info("%s mail sent to subscriber %s", kind, subscriber.id)
        else:
            log.warning(
                "%s mail to subscriber %s not sent: %s %s",
                kind,
                subscriber.id,
                result.status,
                result.error[:300],
            )
    return sent


def send_optin(
    request: Request, session: Session, subscriber: Subscriber, lists: list[MailingList]
) -> bool:
    """Mails the confirmation of `lists` to the subscriber; True when SMTP accepted it.
    ApiError 503 when no SMTP server is enabled."""
    config = sending_config(request, session)
    sender = direct_sender(request, config)
    template = public.optin_template(session)
    content = tx_content(session, template.id, content_type="html", config=config)
    links = _links(request, config.root_url, subscriber, [m.uuid for m in lists])
    results = sender.send(
        session,
        content,
        [Target(subscriber.email, recipient_of(subscriber))],
        kind="optin",
        tx_data={"lists": [m.name for m in lists]},
        links_for=lambda _: links,
    )
    return _report("opt-in", subscriber, results)


def send_export(request: Request, session: Session, subscriber: Subscriber, locale: str) -> bool:
    """Mails the subscriber's data as a JSON attachment (`EXPORT_FILENAME`) through the
    transactional path; True when SMTP accepted it."""
    config = sending_config(request, session)
    sender = direct_sender(request, config)
    data = public.export_json(public.export_data(session, subscriber))
    links = _links(request, config.root_url, subscriber, [])
    with i18n.use_locale(locale):
        subject = i18n.gettext("Your data")
        intro = i18n.gettext(
            "You asked for the data we keep about you: it is attached to this message, as "
            "JSON. To change your subscriptions or delete your data, use this page:"
        )
    # The text arrives as data, never as template source.
    content = compile_content(
        subject=subject,
        body="{{ data.intro }}\n{{ data.link }}\n",
        content_type="plain",
        from_email=config.from_email,
    )
    results = sender.send(
        session,
        content,
        [Target(subscriber.email, recipient_of(subscriber))],
        kind="export",
        tx_data={"intro": intro, "link": links.manage_url},
        links_for=lambda _: links,
        attachments=[Attachment(EXPORT_FILENAME, "application/json", data.encode("utf-8"))],
    )
    return _report("export", subscriber, results)
