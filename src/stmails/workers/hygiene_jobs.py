"""The scheduler's jobs that send mail: the sunset policy's re-engagement series (and, in
`reverify`, re-verification). They are built here, where sending is wired together, and added
to the scheduler's jobs by the process that runs it (`cli.worker`)."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import dns.asyncresolver
from sqlalchemy.orm import Session, sessionmaker

from stmails.ingest.message_ids import make_message_id
from stmails.services import bounces, dkim_keys
from stmails.services import settings as settings_service
from stmails.services.hygiene import reverify, sunset
from stmails.services.sending.compose import Links, campaign_links
from stmails.services.sending.direct import DirectSender, resolve_subscribers, tx_content
from stmails.services.sending.routing import DEFAULT_MESSENGER, RoutedPools
from stmails.services.sending.runtime import load_config, return_path_for, verp_maker
from stmails.services.sending.signing import Transport, signed
from stmails.services.subscribers import email_key
from stmails.verify.offline import OfflineVerifier
from stmails.verify.pipeline import Verifier
from stmails.verify.smtp import SmtpProber
from stmails.verify.syntax import Policy
from stmails.workers.scheduler import Job

log = logging.getLogger("stmails.scheduler")

__all__ = ["ReengagementMailer", "reverify_job", "sunset_job"]


@dataclass
class ReengagementMailer:
    """Sends the re-engagement template to subscribers through the normal sending path:
    suppression checks, DKIM signing, signed Message-IDs, bounces recorded."""

    root_url: str
    secret: bytes
    _pools: RoutedPools = field(default_factory=RoutedPools)

    def __call__(self, session: Session, subscriber_ids: Sequence[int]) -> set[int]:
        config = load_config(session, self.root_url)
        template_id = settings_service.get_valid(session, "hygiene.sunset")["template_id"]
        if not config.smtp:
            raise RuntimeError("no SMTP server is enabled (settings: smtp)")
        if template_id is None:
            raise RuntimeError("hygiene.sunset.template_id is not set")
        signer = dkim_keys.load_signer(session, self.secret)

        def sign(send: Transport) -> Transport:
            return signed(send, signer)

        # Routed by From as every send path is (services.sending.routing).
        sender = DirectSender(
            config,
            sign(self._pools.pool(config.smtp, config.smtp).send),
            bounces.record,
            return_path_for(config, verp_maker(self.secret)),
            lambda domain, recipient: make_message_id(self.secret, domain, recipient),
            route=self._pools.router(config.smtp, DEFAULT_MESSENGER, sign),
        )
        content = tx_content(session, int(template_id), config=config)
        targets = resolve_subscribers(session, ids=list(subscriber_ids))
        by_email = {
            email_key(t.recipient.email): t.recipient.id for t in targets if t.recipient is not None
        }

        def links(recipient: Any) -> Links:
            # The same unsubscribe and preferences links as campaign mail.
            return campaign_links(config.root_url, "", recipient.uuid)

        results = sender.send(session, content, targets, kind="reengage", links_for=links)
        sent = set()
        for result in results:
            if result.status == "sent":
                sent.add(by_email[email_key(result.recipient)])
            else:
                log.info("re-engagement mail to %s not sent: %s", result.recipient, result.error)
        return sent

    def close(self) -> None:
        """Closes the SMTP connections."""
        self._pools.close()


def sunset_job(mailer: sunset.Mailer | None) -> Job:
    """The sunset policy as a scheduler job (only while `hygiene.sunset.enabled`)."""

    def every(session: Session) -> timedelta | None:
        value = settings_service.get_valid(session, "hygiene.sunset")
        return timedelta(hours=int(value["every_hours"])) if value["enabled"] else None

    def run(factory: sessionmaker[Session]) -> dict[str, Any]:
        with factory() as session, session.begin():
            return sunset.run(session, mailer).to_dict()

    return Job("sunset", every, run)


def _system_resolver() -> dns.asyncresolver.Resolver:
    return dns.asyncresolver.Resolver()


def reverify_job(
    resolver_factory: Callable[[], dns.asyncresolver.Resolver] = _system_resolver,
) -> Job:
    """Re-verification as a scheduler job (only while `hygiene.reverify.enabled`): the
    existing verifier with DNS paced to `dns_per_second`, SMTP probing only when
    `smtp_probe` is set."""

    def every(session: Session) -> timedelta | None:
        value = settings_service.get_valid(session, "hygiene.reverify")
        return timedelta(hours=int(value["every_hours"])) if value["enabled"] else None

    def run(factory: sessionmaker[Session]) -> dict[str, Any]:
        with factory() as session:
            config = settings_service.get_valid(session, "hygiene.reverify")
            bounce = str(settings_service.get_valid(session, "sending.bounce_address") or "")
        paced = reverify.PacedResolver(
            resolver_factory(), per_second=float(config["dns_per_second"])
        )
        prober = None
        if config["smtp_probe"]:
            if not bounce:
                raise RuntimeError(
                    "hygiene.reverify.smtp_probe needs sending.bounce_address (the MAIL FROM)"
                )
            prober = SmtpProber(helo_name=socket.getfqdn(), mail_from=bounce)
        verifier = Verifier(OfflineVerifier(Policy.MAILING), dns=paced, smtp=prober)
        return reverify.run(factory, verifier)

    return Job("reverify", every, run)
