"""Sends one campaign in a process of its own (the crash test kills it mid-campaign).

Usage: python sender_process.py DATABASE_URL CAMPAIGN_ID < settings.json
"""

from __future__ import annotations

import json
import sys

from stmails.db.engine import make_engine, session_factory
from stmails.services.bounces import record
from stmails.services.sending.campaigns import CampaignRunner
from stmails.services.sending.config import SendingConfig
from stmails.services.sending.runtime import return_path_for
from stmails.services.sending.smtp import SmtpPool


def main() -> None:
    url, campaign_id = sys.argv[1], int(sys.argv[2])
    config = SendingConfig.from_settings(json.loads(sys.stdin.read()))
    engine = make_engine(url)
    runner = CampaignRunner(
        session_factory(engine),
        SmtpPool(config.smtp),
        config,
        record,
        return_path_for(config, None),
        sleep=lambda _: None,
    )
    runner.run(campaign_id)


if __name__ == "__main__":
    main()
