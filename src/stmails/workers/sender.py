"""The campaign sender loop that runs inside `stmails serve` and `stmails worker`.

Every `poll_seconds` it reads the sending settings, starts scheduled campaigns whose time has
come and sends running campaigns one after another (oldest first). Several processes may run
it against the same database: each recipient's send is claimed in `campaign_sends` before SMTP,
so two senders never mail the same person the same campaign (see services.sending.campaigns).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from stmails import metrics
from stmails.db.engine import read_only
from stmails.db.models import Campaign
from stmails.services import bounces, dkim_keys
from stmails.services import settings as settings_service
from stmails.services.errors import InvalidInput
from stmails.services.sending.campaigns import (
    CLAIM_TIMEOUT,
    SETTINGS_CHANGED,
    CampaignRunner,
    start_due_campaigns,
)
from stmails.services.sending.routing import RoutedPools, servers_for
from stmails.services.sending.runtime import (
    VerpMaker,
    load_config,
    return_path_for,
    verp_maker,
)

log = logging.getLogger("stmails.sender")

# How often a running campaign looks whether the settings changed.
SETTINGS_POLL_SECONDS = 2.0

__all__ = ["SenderLoop", "VerpMaker", "load_config", "return_path_for", "verp_maker"]


def pause_running(session: Session, reason: str, campaign_id: int | None = None) -> list[int]:
    """Pauses every running campaign (or only `campaign_id`) with `reason` (the caller
    commits); returns their ids."""
    query = select(Campaign.id).where(Campaign.status == "running")
    if campaign_id is not None:
        query = query.where(Campaign.id == campaign_id)
    ids = list(session.scalars(query))
    if ids:
        session.execute(
            update(Campaign)
            .where(Campaign.id.in_(ids), Campaign.status == "running")
            .values(status="paused", pause_reason=reason[:1000])
        )
    return ids


@dataclass
class SenderLoop:
    """Polls for campaigns to send until `stop` is set."""

    factory: sessionmaker[Session]
    root_url: str
    verp: VerpMaker | None = None
    poll_seconds: float = 5.0
    # The app's secret key, which decrypts the stored DKIM keys (None: a domain with an
    # active key cannot be sent from, loudly).
    dkim_secret: bytes | None = None
    claim_timeout: float = CLAIM_TIMEOUT
    stop: threading.Event = field(default_factory=threading.Event)
    # One pool per set of servers a campaign goes through (its messenger and From address:
    # services.sending.routing), kept while the settings stay the same.
    _pools: RoutedPools = field(default_factory=RoutedPools)
    _again: bool = False

    def _sleep(self, seconds: float) -> None:
        # Waiting on the stop event lets a shutdown interrupt a retry delay.
        self.stop.wait(seconds)

    def run_once(self) -> int:
        """One pass: start due campaigns, send every running one; returns how many ran."""
        with self.factory() as session, session.begin():
            started = start_due_campaigns(session)
            if started:
                log.info("scheduled campaigns started: %s", started)
        problem = ""
        # Read-only: the pass must not hold SQLite's write lock while it decides.
        with read_only(self.factory)() as session:
            running: list[tuple[int, str, str]] = [
                (row[0], row[1], row[2])
                for row in session.execute(
                    select(Campaign.id, Campaign.messenger, Campaign.from_email)
                    .where(Campaign.status == "running")
                    .order_by(Campaign.id)
                )
            ]
            if not running:
                return 0
            version = settings_service.settings_version(session)
            try:
                config = load_config(session, self.root_url)
            except InvalidInput as exc:
                problem = f"the sending settings cannot work: {exc}"
            # Loaded per pass: a key activated since the last pass signs from this one on.
            signer = dkim_keys.load_signer(session, self.dkim_secret)
        if problem:
            self._cannot_send(problem)
            return 0
        if not config.smtp:
            self._cannot_send("no SMTP server is enabled (settings: smtp)")
            return 0
        settings_changed = self._watch_settings(version)
        for campaign_id, messenger, from_email in running:
            if self.stop.is_set():
                break
            try:
                servers = servers_for(config.smtp, messenger, from_email or config.from_email)
            except InvalidInput as exc:
                self._cannot_send(f"campaign {campaign_id}: {exc}", campaign_id)
                continue
            runner = CampaignRunner(
                self.factory,
                self._pools.pool(config.smtp, servers),
                config,
                bounces.record,
                return_path_for(config, self.verp),
                sleep=self._sleep,
                signer=signer,
                settings_changed=settings_changed,
                claim_timeout=self.claim_timeout,
            )
            report = runner.run(campaign_id, should_stop=self.stop.is_set)
            if report.stopped_because == SETTINGS_CHANGED:
                # The next pass (at once) reads them; the other campaigns wait for it.
                self._again = True
                break
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

    def _watch_settings(self, version: tuple[int, Any]) -> Callable[[], bool]:
        """Whether the settings changed since `version` was read (asked before each batch,
        looked up at most every `SETTINGS_POLL_SECONDS`): settings and credentials saved
        through any server reach a running campaign within seconds."""
        last_look = time.monotonic()
        changed = False

        def settings_changed() -> bool:
            nonlocal last_look, changed
            if changed or time.monotonic() - last_look < SETTINGS_POLL_SECONDS:
                return changed
            last_look = time.monotonic()
            with read_only(self.factory)() as session:
                changed = settings_service.settings_version(session) != version
            if changed:
                log.info("the settings changed: the sender picks them up")
            return changed

        return settings_changed

    def _cannot_send(self, reason: str, campaign_id: int | None = None) -> None:
        # Running campaigns would wait forever without a word: they are paused, with why.
        with self.factory() as session, session.begin():
            paused = pause_running(session, reason, campaign_id)
        log.error("campaigns %s paused: %s", paused, reason)
        if paused:
            metrics.alert_raised("campaign_paused")

    def run_forever(self) -> None:
        """Loops until `stop` is set; an error in one pass is logged and the loop goes on."""
        while not self.stop.is_set():
            self._again = False
            try:
                self.run_once()
            except Exception:
                log.exception("sender pass failed; retrying in %ss", self.poll_seconds)
            if not self._again:
                self.stop.wait(self.poll_seconds)
        self.close()

    def close(self) -> None:
        """Closes the SMTP connections the loop holds."""
        self._pools.close()


def start_in_thread(loop: SenderLoop) -> threading.Thread:
    """Runs the loop in a daemon thread (for `stmails serve`); set `loop.stop` to end it."""
    thread = threading.Thread(target=loop.run_forever, name="stmails-sender", daemon=True)
    thread.start()
    return thread
