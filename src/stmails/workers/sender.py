"""The campaign sender loop that runs inside `stmails serve` and `stmails worker`.

Every `poll_seconds` it reads the sending settings, starts scheduled campaigns whose time has
come and sends running campaigns one after another (oldest first). Several processes may run
it against the same database: each recipient's send is claimed in `campaign_sends` before SMTP,
so two senders never mail the same person the same campaign (see services.sending.campaigns).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stmails.db.models import Campaign
from stmails.ingest import verp
from stmails.ingest.verp import MAX_PREFIX
from stmails.services import bounces
from stmails.services import settings as settings_service
from stmails.services.sending.campaigns import CampaignRunner, start_due_campaigns
from stmails.services.sending.compose import ReturnPath
from stmails.services.sending.config import SendingConfig
from stmails.services.sending.smtp import SmtpPool

log = logging.getLogger("stmails.sender")

# Makes a VERP address from (bounce address, campaign id, subscriber id); campaign id 0: none.
VerpMaker = Callable[[str, int, int], str]


def verp_maker(secret: bytes) -> VerpMaker:
    """VERP addresses signed with `secret`: `local+TOKEN@domain` of the bounce address."""

    def make(address: str, campaign_id: int, subscriber_id: int) -> str:
        local, _, domain = address.rpartition("@")
        return verp.make_address(secret, domain, subscriber_id, campaign_id, prefix=local)

    return make


def return_path_for(config: SendingConfig, verp: VerpMaker | None) -> ReturnPath:
    """The envelope sender of each message: the bounce address, VERP-encoded when enabled.

    Without a bounce address the From address is used (empty here means "From"). A bounce
    address whose local part is too long for a token (over `MAX_PREFIX` octets) is used as it
    is, with a warning: mail must go out with a valid return path.
    """
    address = config.bounce_address

    def plain(campaign_id: int, subscriber_id: int) -> str:
        return address

    if not address or not config.verp or verp is None:
        return plain
    if len(address.rpartition("@")[0].encode()) > MAX_PREFIX:
        log.warning(
            "sending.bounce_address %r: local part over %d octets, too long for VERP; "
            "sending without VERP",
            address[:200],
            MAX_PREFIX,
        )
        return plain

    def verp_path(campaign_id: int, subscriber_id: int) -> str:
        if not subscriber_id:
            return address
        return verp(address, campaign_id, subscriber_id)

    return verp_path


def load_config(session: Session, root_url: str) -> SendingConfig:
    """The sending configuration from the settings table."""
    return SendingConfig.from_settings(settings_service.get_all(session), root_url=root_url)


@dataclass
class SenderLoop:
    """Polls for campaigns to send until `stop` is set."""

    factory: sessionmaker[Session]
    root_url: str
    verp: VerpMaker | None = None
    poll_seconds: float = 5.0
    stop: threading.Event = field(default_factory=threading.Event)
    _pool: SmtpPool | None = None
    _pool_key: Any = None

    def _transport(self, config: SendingConfig) -> SmtpPool:
        key = tuple(config.smtp)
        if self._pool is None or key != self._pool_key:
            if self._pool is not None:
                self._pool.close()
            self._pool = SmtpPool(config.smtp)
            self._pool_key = key
        return self._pool

    def _sleep(self, seconds: float) -> None:
        # Waiting on the stop event lets a shutdown interrupt a retry delay.
        self.stop.wait(seconds)

    def run_once(self) -> int:
        """One pass: start due campaigns, send every running one; returns how many ran."""
        with self.factory() as session, session.begin():
            started = start_due_campaigns(session)
            if started:
                log.info("scheduled campaigns started: %s", started)
        with self.factory() as session:
            config = load_config(session, self.root_url)
            running = list(
                session.scalars(
                    select(Campaign.id).where(Campaign.status == "running").order_by(Campaign.id)
                )
            )
        if not running:
            return 0
        if not config.smtp:
            log.error("campaigns are running but no SMTP server is enabled (settings: smtp)")
            return 0
        runner = CampaignRunner(
            self.factory,
            self._transport(config),
            config,
            bounces.record,
            return_path_for(config, self.verp),
            sleep=self._sleep,
        )
        for campaign_id in running:
            if self.stop.is_set():
                break
            report = runner.run(campaign_id, should_stop=self.stop.is_set)
            log.info(
                "campaign %s: sent %s, skipped %s, hard %s, soft %s, deferred %s (%s)",
                campaign_id,
                report.sent,
                report.skipped,
                report.hard,
                report.soft,
                report.deferred,
                "finished" if report.finished else report.stopped_because,
            )
        return len(running)

    def run_forever(self) -> None:
        """Loops until `stop` is set; an error in one pass is logged and the loop goes on."""
        while not self.stop.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("sender pass failed; retrying in %ss", self.poll_seconds)
            self.stop.wait(self.poll_seconds)
        self.close()

    def close(self) -> None:
        """Closes the SMTP connections the loop holds."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None


def start_in_thread(loop: SenderLoop) -> threading.Thread:
    """Runs the loop in a daemon thread (for `stmails serve`); set `loop.stop` to end it."""
    thread = threading.Thread(target=loop.run_forever, name="stmails-sender", daemon=True)
    thread.start()
    return thread
