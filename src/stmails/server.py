"""The server process's composition: the web app with the background loops it runs beside it.

`stmails serve` runs `app_from_environment` in each uvicorn worker process. The web layer
imports no worker (an import-linter contract); this module, above both, hands the workers'
loops to `web.app.create_app`:

- `mailbox_scanner`: the bounce-mailbox scanner (`workers.mailbox.MailboxWorker`). Every server
  process runs one; a lock per mailbox makes sure only one process scans a given mailbox.
- `analytics_folder`: folds opens and clicks into the analytics rollups
  (`workers.analytics.AnalyticsFolder`), keeping them small.
- `alert_worker`: delivers alerts from their outbox (`workers.alerts.AlertWorker`;
  services.alerts.delivery), never from the watcher that raised them.

The campaign sender and the scheduler are started by `stmails serve` itself (cli/serve.py) or
run by `stmails worker`.
"""

from __future__ import annotations

import gc

from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from stmails.config import Settings, load_settings
from stmails.web.app import BackgroundLoop, LoopFactory, create_app
from stmails.workers.alerts import AlertWorker
from stmails.workers.analytics import AnalyticsFolder
from stmails.workers.mailbox import MailboxWorker

__all__ = ["app_from_environment", "background_loops", "create_server_app"]


def _mailbox_scanner(sessions: sessionmaker[Session], settings: Settings) -> BackgroundLoop:
    # Looked up when called, so that a test may put a MailboxWorker with another classifier
    # in its place.
    return MailboxWorker(sessions, settings)


def _analytics_folder(sessions: sessionmaker[Session], settings: Settings) -> BackgroundLoop:
    del settings
    return AnalyticsFolder(sessions)


def _alert_worker(sessions: sessionmaker[Session], settings: Settings) -> BackgroundLoop:
    return AlertWorker(sessions, settings.root_url)


def background_loops() -> dict[str, LoopFactory]:
    """The loops a server process runs beside the app, by readiness-check name (started in
    this order, stopped in the reverse one)."""
    return {
        "mailbox_scanner": _mailbox_scanner,
        "analytics_folder": _analytics_folder,
        "alert_worker": _alert_worker,
    }


def create_server_app(settings: Settings | None = None, *, engine: Engine | None = None) -> FastAPI:
    """`create_app` with the server's background loops: the app as `stmails serve` runs it."""
    return create_app(settings, engine=engine, loops=background_loops())


def app_from_environment() -> FastAPI:
    """Factory for uvicorn worker processes: settings from the environment."""
    app = create_server_app(load_settings())
    # What exists once the app is built (modules, routes, settings) lives as long as the
    # process: frozen, it is no longer traversed by the full collections that large requests
    # trigger (a 10,000-entry suppression import allocates some 40,000 containers). The
    # garbage of start-up is collected first, so that none of it is kept for good.
    gc.collect()
    gc.freeze()
    return app
