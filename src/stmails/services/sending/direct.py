"""Mail sent at once, outside the campaign sender: transactional messages and campaign tests.

Every recipient is checked just before SMTP exactly like campaign mail: an unknown or disabled
subscriber, or a suppressed address (global, domain), is refused with a per-recipient error
that names the reason, and a 5xx answer is recorded as a bounce at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from stmails.db.models import Subscriber, Template
from stmails.db.types import normalize_email
from stmails.services.errors import InputError, InvalidInput
from stmails.services.sending.campaigns import (
    BounceRecorder,
    Transport,
    recipient_of,
    smtp_event,
)
from stmails.services.sending.compose import (
    Content,
    Envelope,
    Links,
    Recipient,
    compile_content,
    senders_for,
    template_context,
    to_spec,
)
from stmails.services.sending.config import SendingConfig
from stmails.services.sending.envelope import ReturnPaths
from stmails.services.sending.messages import (
    Attachment,
    Message,
    MessageError,
    MessageSpec,
    custom_headers,
    new_message_id,
)
from stmails.services.sending.templates import TemplateRenderError
from stmails.services.subscribers import email_key, get_many_by_email
from stmails.services.suppression import check_batch
from stmails.verify.syntax import Policy, check_syntax

# sent: the server accepted it; refused: not sent (suppressed, unknown subscriber...);
# failed: the server refused it or it could not be sent; in_doubt: the connection ended after
# the whole message was sent, so the server may have accepted it (do not send it again blindly).
Status = Literal["sent", "refused", "failed", "in_doubt"]
MAX_RECIPIENTS = 1000
# Makes the Message-ID of one message from (the Message-ID domain, the recipient's address).
MessageIdMaker = Callable[[str, str], str]


class DirectSendError(InputError):
    """A request that cannot be sent at all (unknown template, bad body); the text says why."""


@dataclass(frozen=True)
class RecipientResult:
    """What happened to one recipient: sent, refused before SMTP, or failed at SMTP."""

    recipient: str
    status: Status
    error: str = ""
    message_id: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The result in the API's shape."""
        out: dict[str, Any] = {"recipient": self.recipient, "status": self.status}
        if self.error:
            out["error"] = self.error
        if self.message_id:
            out["message_id"] = self.message_id
        return out


@dataclass(frozen=True)
class Target:
    """One addressee: a subscriber, or (raw sends) a bare address with no subscriber."""

    label: str
    recipient: Recipient | None
    refusal: str = ""


def resolve_subscribers(
    session: Session, emails: Sequence[str] = (), ids: Sequence[int] = ()
) -> list[Target]:
    """Targets for subscriber emails and ids; unknown or disabled ones carry their refusal."""
    if len(emails) + len(ids) > MAX_RECIPIENTS:
        raise DirectSendError(f"at most {MAX_RECIPIENTS} recipients per request")
    targets: list[Target] = []
    found = get_many_by_email(session, emails)
    by_id = (
        {s.id: s for s in session.scalars(select(Subscriber).where(Subscriber.id.in_(ids)))}
        if ids
        else {}
    )
    pairs = [(e, found.get(email_key(e))) for e in emails]
    pairs += [(f"subscriber {i}", by_id.get(i)) for i in ids]
    for label, subscriber in pairs:
        if subscriber is None:
            targets.append(Target(label, None, "subscriber not found"))
        elif subscriber.status == "blocklisted":
            targets.append(Target(subscriber.email, None, "subscriber is blocklisted"))
        else:
            targets.append(Target(subscriber.email, recipient_of(subscriber)))
    return targets


SUBSCRIBER_MODES = ("default", "fallback", "external")


def tx_targets(
    session: Session, mode: str, emails: Sequence[str] = (), ids: Sequence[int] = ()
) -> list[Target]:
    """The recipients of a transactional message by listmonk's `subscriber_mode`: `default`,
    subscribers only (by address or id); `fallback`, the subscriber of each address where there
    is one, else the bare address; `external`, the bare addresses without any lookup. A bare
    address renders with only `.Subscriber.Email`; every recipient still passes the
    suppression list before SMTP."""
    if mode not in SUBSCRIBER_MODES:
        raise DirectSendError(f"subscriber_mode: one of {', '.join(SUBSCRIBER_MODES)}")
    if mode == "default":
        return resolve_subscribers(session, emails=emails, ids=ids)
    if ids:
        raise DirectSendError(f"subscriber_ids: not allowed in {mode} mode (give addresses)")
    if mode == "external":
        return raw_targets(emails)
    found = get_many_by_email(session, emails)
    targets: list[Target] = []
    for email, bare in zip(emails, raw_targets(emails), strict=True):
        subscriber = found.get(email_key(email))
        if subscriber is None:
            targets.append(bare)
        elif subscriber.status == "blocklisted":
            targets.append(Target(subscriber.email, None, "subscriber is blocklisted"))
        else:
            targets.append(Target(subscriber.email, recipient_of(subscriber)))
    return targets


def raw_targets(addresses: Sequence[str]) -> list[Target]:
    """Targets for bare addresses (raw sends): a recipient without a subscriber behind it.

    Each address is parsed strictly (verify.syntax, the mailing policy): a variant that names
    the same mailbox differently (`victim@example.com.`, `"victim"@example.com`) would miss the
    suppression list, and text after the address (`a@example.com> NOTIFY=NEVER`) would reach
    the SMTP command line. Such an address is refused, with the reason, and not sent to."""
    if len(addresses) > MAX_RECIPIENTS:
        raise DirectSendError(f"at most {MAX_RECIPIENTS} recipients per request")
    targets = []
    for address in addresses:
        parsed = check_syntax(address.strip(), Policy.MAILING)
        if not parsed.valid or parsed.normalized is None:
            targets.append(Target(address, None, f"not a valid address: {parsed.error}"))
            continue
        email = normalize_email(parsed.normalized)
        targets.append(Target(email, Recipient(id=0, uuid="", email=email)))
    return targets


def tx_content(
    session: Session,
    template_id: int,
    *,
    content_type: str = "html",
    from_email: str = "",
    subject: str = "",
    headers: Any = None,
    altbody: str | None = None,
    config: SendingConfig,
) -> Content:
    """The compiled content of a transactional template; DirectSendError when unusable.
    `altbody` is the plain-text alternative (default: made from the HTML)."""
    template = session.get(Template, template_id)
    if template is None or template.type != "tx":
        raise DirectSendError(f"template_id: no transactional template {template_id}")
    if content_type not in {"html", "markdown", "plain", "richtext"}:
        raise DirectSendError("content_type: expected html, markdown or plain")
    try:
        return compile_content(
            subject=subject or template.subject,
            body=template.body,
            content_type=content_type,
            from_email=from_email or config.from_email,
            altbody=altbody,
            headers=custom_headers(headers),
        )
    except (TemplateRenderError, MessageError) as exc:
        raise DirectSendError(str(exc)) from exc


@dataclass(frozen=True)
class DirectSender:
    """Sends rendered content to targets now; the same checks as campaign mail.

    `message_id` makes each message's Message-ID (the server signs them, so that a bounce
    returning one can be attributed: `stmails.ingest.message_ids`); random ones without it.
    """

    config: SendingConfig
    transport: Transport
    record_bounce: BounceRecorder
    return_paths: ReturnPaths
    message_id: MessageIdMaker | None = None
    # The transport of a message from a given From address (its messenger's servers that take
    # that address: services.sending.routing); InvalidInput when none does. None: `transport`.
    route: Callable[[str], Transport] | None = None

    def send(
        self,
        session: Session,
        content: Content,
        targets: Sequence[Target],
        *,
        kind: str,
        campaign: Mapping[str, Any] | None = None,
        tx_data: Mapping[str, Any] | None = None,
        links_for: Any = None,
        attachments: Sequence[Attachment] = (),
    ) -> list[RecipientResult]:
        """Checks, renders and sends to every target, with `attachments` after the body;
        bounces are recorded in `session` (the caller commits)."""
        live = [t for t in targets if t.recipient is not None and not t.refusal]
        hits = check_batch(session, [t.label for t in live], list_ids=[])
        campaign_uuid = str((campaign or {}).get("uuid", ""))
        results: list[RecipientResult] = []
        for target in targets:
            if target.refusal or target.recipient is None:
                results.append(RecipientResult(target.label, "refused", target.refusal))
                continue
            hit = hits.get(normalize_email(target.label))
            if hit is not None:
                since = hit.created_at.date().isoformat()
                results.append(
                    RecipientResult(target.label, "refused", f"{hit.describe()} since {since}")
                )
                continue
            results.append(
                self._send_one(
                    session,
                    content,
                    target.recipient,
                    kind,
                    campaign_uuid,
                    campaign,
                    tx_data,
                    links_for,
                    tuple(attachments),
                )
            )
        return results

    def _send_one(
        self,
        session: Session,
        content: Content,
        recipient: Recipient,
        kind: str,
        campaign_uuid: str,
        campaign: Mapping[str, Any] | None,
        tx_data: Mapping[str, Any] | None,
        links_for: Any,
        attachments: tuple[Attachment, ...] = (),
    ) -> RecipientResult:
        links: Links = links_for(recipient) if links_for is not None else Links()
        try:
            rendered = content.render(
                template_context(recipient, campaign=campaign, tx_data=tx_data, links=links)
            )
            campaign_id = int((campaign or {}).get("id") or 0)
            envelope = Envelope(
                senders=senders_for(self.return_paths, campaign_id, recipient.id, rendered),
                message_id=(
                    self.message_id(self.config.id_domain, recipient.email)
                    if self.message_id is not None
                    else new_message_id(self.config.id_domain)
                ),
                campaign_uuid=campaign_uuid,
                unsubscribe_url=links.unsubscribe_url,
                unsubscribe_mailto=self.config.unsubscribe_mailto if links.unsubscribe_url else "",
                feedback_id=f"{kind}:{campaign_uuid[:8] or 'tx'}:{self.config.feedback_id_sender}",
                header_names=content.header_names,
            )
            spec = to_spec(rendered, recipient, envelope)
            spec.attachments = attachments or content.attachments
            message = spec.build()
        except (TemplateRenderError, MessageError) as exc:
            return RecipientResult(recipient.email, "failed", f"render error: {exc}")
        try:
            transport = self.route(spec.from_address) if self.route else self.transport
        except InvalidInput as exc:
            return RecipientResult(recipient.email, "failed", str(exc))
        result = transport(message)
        if result.outcome == "sent":
            return RecipientResult(recipient.email, "sent", message_id=message.message_id)
        if result.outcome == "hard":
            self.record_bounce(
                session, smtp_event(result, message, campaign_uuid, recipient.uuid, "hard")
            )
        status: Status = "in_doubt" if result.outcome == "in_doubt" else "failed"
        return RecipientResult(recipient.email, status, f"{result.outcome} {result.describe()}")


def smtp_test_message(config: SendingConfig, to: str, host: str) -> Message:
    """The message `POST /api/settings/smtp/test` sends: from `app.from_email` (envelope: the
    bounce address, or the server's Return-Path header when it has one) to `to`."""
    return MessageSpec(
        from_address=config.from_email,
        to_address=to,
        subject="stmails: SMTP test",
        text=(
            f"This message was sent by stmails to test the SMTP server {host}.\n"
            "If you can read it, the server accepted and delivered it.\n"
        ),
        return_path=config.bounce_address,
        message_id=new_message_id(config.id_domain),
        headers=[("Feedback-ID", f"test:smtp:{config.feedback_id_sender}")],
    ).build()
