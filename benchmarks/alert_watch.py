"""What the deliverability watcher costs the bounce path, on SQLite.

Builds one running campaign of `--sends` sends (default 200,000) to as many subscribers, with
`--bounces` of them bounced (default 4,000: 2 %, under the critical rate, so the campaign keeps
running and every batch is judged), then records batches of `--batch` bounces of that campaign
through `services.bounces.record_many` (the door of every channel; the webhook's group commit
writes such batches) with the watcher on and off (`deliverability.alerts.enabled`), and times
one judgment alone (the analytics deltas folded between batches, as the folder of every
server process does). Prints the median and p95 of each, and the cost per bounce.

    .venv/bin/python benchmarks/alert_watch.py            # 200,000 sends
    .venv/bin/python benchmarks/alert_watch.py --quick    # 20,000 sends
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select

from stmails.core.event import Event
from stmails.db.engine import make_engine, session_factory
from stmails.db.migrate import upgrade
from stmails.db.models import Campaign, CampaignSend, Subscriber
from stmails.services import settings
from stmails.services.alerts import watch
from stmails.services.analytics.rollups import fold_pending
from stmails.services.bounces import record_many


def build(url: str, sends: int, bounced: int) -> tuple[int, str, list[str]]:
    """The campaign's id and uuid, and the addresses not bounced yet (to bounce later)."""
    engine = make_engine(url)
    upgrade(engine)
    factory = session_factory(engine)
    now = datetime.now(UTC)
    with factory() as session, session.begin():
        campaign = Campaign(name="Big", subject="Big", status="running", started_at=now)
        session.add(campaign)
        session.flush()
        campaign_id, campaign_uuid = campaign.id, campaign.uuid
        # Bounce actions off: the benchmark measures the watcher, not blocklisting.
        settings.set_value(
            session,
            "bounce.actions",
            {k: {"count": 1000, "action": "none"} for k in ("soft", "hard", "complaint")},
        )
    emails = [f"s{n:07d}@d{n % 5000}.example" for n in range(sends)]
    for start in range(0, sends, 20_000):
        chunk = emails[start : start + 20_000]
        with factory() as session, session.begin():
            session.execute(
                insert(Subscriber),
                [{"email": e, "uuid": str(uuid.uuid4()), "name": ""} for e in chunk],
            )
    with factory() as session, session.begin():
        ids = list(session.scalars(select(Subscriber.id).order_by(Subscriber.id)))
        # Sent over the last half hour, in subscriber order (as the sender goes).
        step = timedelta(seconds=1800 / max(1, sends))
        session.execute(
            insert(CampaignSend),
            [
                {
                    "campaign_id": campaign_id,
                    "subscriber_id": sid,
                    "status": "sent",
                    "reason": "",
                    "message_id": f"<{sid}@bench>",
                    "sent_at": now - timedelta(seconds=1800) + index * step,
                }
                for index, sid in enumerate(ids)
            ],
        )
    # Bounces spread over the whole campaign, 2 % of the latest sends among them.
    bounce_every = max(1, sends // max(1, bounced))
    early = [emails[n] for n in range(0, sends, bounce_every)][:bounced]
    with factory() as session, session.begin():
        record_many(session, [event(e, campaign_uuid, "early") for e in early])
    # As the analytics folder of every server process does every 2 s.
    fold_pending(factory)
    engine.dispose()
    rest = [e for n, e in enumerate(emails) if n % bounce_every]
    return campaign_id, campaign_uuid, rest


def event(email: str, campaign_uuid: str, tag: str) -> Event:
    return Event(
        source="bench",
        type="hard",
        email=email,
        campaign_uuid=campaign_uuid,
        reason="nouser",
        event_id=f"{tag}:{email}",
    )


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sends", type=int, default=200_000)
    parser.add_argument("--bounces", type=int, default=4_000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.sends, args.bounces, args.rounds = 20_000, 400, 10
    print(
        f"alert_watch: SQLite, one running campaign of {args.sends:,} sends and "
        f"{args.bounces:,} bounces; batches of {args.batch} bounces; {os.cpu_count()} cores "
        f"shared (load average now {os.getloadavg()[0]:.1f})"
    )
    with tempfile.TemporaryDirectory(prefix="stmails-watch-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'watch.db'}"
        started = time.perf_counter()
        campaign_id, campaign_uuid, rest = build(url, args.sends, args.bounces)
        print(f"built in {time.perf_counter() - started:.0f} s")
        engine = make_engine(url)
        factory = session_factory(engine)
        timings: dict[str, list[float]] = {"watcher on": [], "watcher off": []}
        cursor = 0
        for round_number in range(args.rounds):
            for label in ("watcher on", "watcher off"):
                with factory() as session, session.begin():
                    settings.set_value(
                        session, "deliverability.alerts", {"enabled": label == "watcher on"}
                    )
                batch = rest[cursor : cursor + args.batch]
                cursor += args.batch * 7
                with factory() as session, session.begin():
                    began = time.perf_counter()
                    record_many(
                        session, [event(e, campaign_uuid, f"r{round_number}") for e in batch]
                    )
                    timings[label].append((time.perf_counter() - began) * 1000)
        with factory() as session:
            status = session.scalar(select(Campaign.status).where(Campaign.id == campaign_id))
            judged = []
            thresholds = watch.alert_config_of(session).thresholds
            for _ in range(args.rounds):
                began = time.perf_counter()
                figures = watch.window_figures(session, campaign_id, thresholds, datetime.now(UTC))
                judged.append((time.perf_counter() - began) * 1000)
        for label, values in timings.items():
            median = statistics.median(values)
            print(
                f"  record_many of {args.batch}, {label:<12} median {median:6.1f} ms"
                f"  p95 {percentile(values, 0.95):6.1f} ms"
            )
        extra = statistics.median(timings["watcher on"]) - statistics.median(timings["watcher off"])
        per_bounce = extra / args.batch
        print(f"  the watcher's share: {extra:.1f} ms per batch, {per_bounce:.3f} ms per bounce")
        print(
            f"  one window judgment ({figures.sends} sends, {figures.bounced} bounced): median "
            f"{statistics.median(judged):.1f} ms, p95 {percentile(judged, 0.95):.1f} ms; "
            f"campaign still {status}"
        )
        engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
