"""Tracking without HTTP: the machine rules, the TrackLink URLs a template names, the template
values, and how hits are recorded (unique opens and clicks, bursts, unknown subscribers)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from stmails.db.models import (
    AnalyticsChange,
    CampaignEngagement,
    CampaignView,
    Link,
    LinkClick,
)
from stmails.services import settings
from stmails.services.analytics import rollups
from stmails.services.analytics.rollups import Scope
from stmails.services.analytics.window import Window
from stmails.services.errors import NotFound
from stmails.services.tracking import machines
from stmails.services.tracking.hits import Hit, HitResult, UnknownSubscriber, record_hits
from stmails.services.tracking.links import (
    ANONYMOUS,
    CampaignTracking,
    TrackingConfig,
    register_links,
    trackable,
    tracked_urls,
)

from .history import T0, campaign, send, subscriber

BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0"


@pytest.mark.parametrize(
    ("kind", "method", "agent", "ip", "rule"),
    [
        ("view", "GET", BROWSER, "203.0.113.9", ""),
        ("click", "GET", BROWSER, "203.0.113.9", ""),
        ("view", "HEAD", BROWSER, "203.0.113.9", "head_request"),
        ("click", "head", BROWSER, "203.0.113.9", "head_request"),
        ("view", "GET", "Mozilla/5.0", "198.51.100.7", "apple_mpp"),
        ("view", "GET", " Mozilla/5.0 ", "198.51.100.7", "apple_mpp"),
        # A click with the bare agent is not Apple's image proxy.
        ("click", "GET", "Mozilla/5.0", "198.51.100.7", ""),
        ("view", "GET", BROWSER, "17.58.1.2", "apple_mpp"),
        ("view", "GET", BROWSER, "::ffff:17.58.1.2", "apple_mpp"),
        ("click", "GET", BROWSER, "40.93.7.1", "microsoft_scanner"),
        ("click", "GET", BROWSER, "52.103.255.255", "microsoft_scanner"),
        ("click", "GET", BROWSER, "52.104.0.1", ""),
        (
            "click",
            "GET",
            "Microsoft Office/16.0 (Windows NT 10.0)",
            "198.51.100.7",
            "microsoft_scanner",
        ),
        # Outlook loading images is a person reading.
        ("view", "GET", "Microsoft Office/16.0 (Windows NT 10.0)", "198.51.100.7", ""),
        ("click", "GET", "Mozilla/5.0 (compatible; BarracudaCentral)", "", "barracuda"),
        ("view", "GET", "Mimecast-Url-Protect/1.0", "", "mimecast"),
        ("click", "GET", "Proofpoint URL Defense", "", "proofpoint"),
        ("click", "GET", "Mozilla/5.0 (compatible; Googlebot/2.1)", "", "robot"),
        ("click", "GET", "python-requests/2.31", "", "robot"),
        ("click", "GET", "Mozilla/5.0 (Linux; Android 10; CUBOT X30) Chrome/120", "", ""),
        ("click", "GET", "", "", "no_user_agent"),
        ("view", "GET", "", "", ""),
        ("view", "GET", BROWSER + " (via ggpht.com GoogleImageProxy)", "66.249.80.1", ""),
        ("click", "GET", BROWSER, "not an address", ""),
    ],
)
def test_machine_rules(kind: str, method: str, agent: str, ip: str, rule: str) -> None:
    assert machines.by_request(kind, method, agent, ip) == rule  # type: ignore[arg-type]


def test_time_rules() -> None:
    assert machines.too_soon(T0, T0 + timedelta(seconds=9)) == "too_soon"
    assert machines.too_soon(T0, T0 + timedelta(seconds=10)) == ""
    assert machines.too_soon(None, T0) == ""
    earlier = [(1, T0)]
    assert machines.in_burst(T0 + timedelta(seconds=3), 2, earlier)
    assert not machines.in_burst(T0 + timedelta(seconds=4), 2, earlier)
    assert not machines.in_burst(T0 + timedelta(seconds=1), 1, earlier)


def test_user_agents_are_looked_at_in_bounded_time() -> None:
    huge = "x" * 1_000_000 + "barracuda"
    assert machines.by_request("click", "GET", huge, "") == ""


def test_tracked_urls_of_both_dialects() -> None:
    found = tracked_urls(
        [
            '<a href="{{ TrackLink "https://a.example/x?y=1" }}">a</a>'
            '<a href="https://b.example/p@TrackLink">b</a>'
            "<a href=\"{{ TrackLink('https://c.example/') }}\">c</a>"
            '<a href="{{ TrackLink .Subscriber.Attribs.site }}">d</a>'
            '<a href="{{ TrackLink "javascript:alert(1)" }}">e</a>',
            '{{ TrackLink "https://a.example/x?y=1" }} {{ TrackView }}',
            "no links here",
            "{{ broken",
        ]
    )
    assert found.urls == ("https://a.example/x?y=1", "https://b.example/p", "https://c.example/")
    assert found.untracked == (
        "(a URL computed when the message is rendered)",
        "javascript:alert(1)",
    )
    assert trackable("https://a.example/" + "p" * 1980)
    assert not trackable("https://a.example/" + "p" * 2000)
    assert not trackable("https:///nohost")
    assert not trackable("https://a.example/a b")


def test_template_values_of_a_tracked_campaign() -> None:
    tracking = CampaignTracking(
        "https://lists.example.org",
        "c0ffee00-0000-4000-8000-000000000001",
        TrackingConfig(individual=True),
        {"https://a.example/": "11111111-1111-4111-8111-111111111111"},
    )
    values = tracking.template_values("22222222-2222-4222-8222-222222222222")
    pixel = values["TrackView"]
    assert isinstance(pixel, Markup) and pixel.startswith('<img src="https://lists.example.org/')
    assert "/22222222-2222-4222-8222-222222222222/px.png" in pixel
    assert values["TrackLink"]("https://a.example/") == (
        "https://lists.example.org/link/11111111-1111-4111-8111-111111111111/"
        "c0ffee00-0000-4000-8000-000000000001/22222222-2222-4222-8222-222222222222"
    )
    # A URL that was not registered stays as it is.
    assert values["TrackLink"]("https://other.example/") == "https://other.example/"
    anonymous = CampaignTracking(tracking.root_url, tracking.campaign_uuid, TrackingConfig())
    assert (
        ANONYMOUS in anonymous.template_values("22222222-2222-4222-8222-222222222222")["TrackView"]
    )
    off = CampaignTracking(tracking.root_url, tracking.campaign_uuid, TrackingConfig(disabled=True))
    assert off.template_values("x")["TrackView"] == ""


def test_links_are_registered_once_per_campaign(session: Session) -> None:
    one, two = campaign(session, "one"), campaign(session, "two")
    first = register_links(session, one.id, ["https://a.example/", "https://b.example/"])
    again = register_links(session, one.id, ["https://a.example/"])
    other = register_links(session, two.id, ["https://a.example/"])
    assert again == {"https://a.example/": first["https://a.example/"]}
    assert other["https://a.example/"] != first["https://a.example/"]
    assert session.scalar(select(func.count()).select_from(Link)) == 3


@pytest.fixture
def world(session_maker: sessionmaker[Session]) -> Iterator[Session]:
    with session_maker() as session:
        settings.set_value(session, "privacy.individual_tracking", True)
        session.commit()
        yield session


def _totals(session: Session) -> dict[str, int]:
    return rollups.totals(session, Window(), Scope(campaign_mail=False))


def test_unique_opens_and_clicks_are_counted_once_across_batches(world: Session) -> None:
    camp = campaign(world, "c")
    ana = subscriber(world, "ana@example.org")
    send(world, camp, ana, "sent", "", at=T0 - timedelta(minutes=5))
    link_a = Link(campaign_id=camp.id, url="https://a.example/")
    link_b = Link(campaign_id=camp.id, url="https://b.example/")
    world.add_all([link_a, link_b])
    world.commit()

    def hit(kind: str, minutes: float, link: Link | None = None) -> Hit:
        return Hit(
            kind,  # type: ignore[arg-type]
            camp.id,
            ana.uuid,
            T0 + timedelta(minutes=minutes),
            link_id=link.id if link else None,
            user_agent=BROWSER,
        )

    record_hits(world, [hit("view", 1), hit("view", 2)])
    record_hits(world, [hit("click", 3, link_a)])
    world.commit()
    record_hits(world, [hit("view", 60), hit("click", 61, link_a)])
    record_hits(world, [hit("click", 62, link_b)])
    world.commit()
    figures = _totals(world)
    assert (figures["views"], figures["unique_views"]) == (3, 1)
    assert (figures["clicks"], figures["unique_clicks"]) == (3, 1)
    row = world.scalar(select(CampaignEngagement))
    assert row is not None
    assert (row.viewed_at, row.clicked_at) == (T0 + timedelta(minutes=1), T0 + timedelta(minutes=3))


def test_a_burst_over_links_flags_every_click_of_it(world: Session) -> None:
    camp = campaign(world, "c")
    ana = subscriber(world, "ana@example.org")
    send(world, camp, ana, "sent", "", at=T0 - timedelta(hours=1))
    links = [Link(campaign_id=camp.id, url=f"https://{n}.example/") for n in "abc"]
    world.add_all(links)
    world.commit()

    def click(link: Link, seconds: float) -> Hit:
        return Hit(
            "click", camp.id, ana.uuid, T0 + timedelta(seconds=seconds), link.id, "GET", BROWSER
        )

    # The scanner's first click looks like a person's, and is committed as one.
    assert record_hits(world, [click(links[0], 0)]) == [HitResult(True, "")]
    world.commit()
    assert _totals(world)["unique_clicks"] == 1
    # Its next clicks, a second later, give it away: all three are a machine's.
    outcomes = record_hits(world, [click(links[1], 1), click(links[2], 1.5)])
    world.commit()
    assert outcomes == [HitResult(True, "link_burst"), HitResult(True, "link_burst")]
    assert sorted(world.scalars(select(LinkClick.machine))) == ["link_burst"] * 3
    figures = _totals(world)
    assert (figures["clicks"], figures["unique_clicks"], figures["machine_clicks"]) == (0, 0, 3)
    assert world.scalar(select(CampaignEngagement.clicked_at)) is None
    # The reader's own click a minute later is the first click.
    record_hits(world, [click(links[0], 60)])
    world.commit()
    figures = _totals(world)
    assert (figures["clicks"], figures["unique_clicks"]) == (1, 1)


def test_hits_right_after_the_send_are_a_machines(world: Session) -> None:
    camp = campaign(world, "c")
    ana = subscriber(world, "ana@example.org")
    send(world, camp, ana, "sent", "", at=T0)
    world.commit()
    early = Hit("view", camp.id, ana.uuid, T0 + timedelta(seconds=4), user_agent=BROWSER)
    late = Hit("view", camp.id, ana.uuid, T0 + timedelta(minutes=4), user_agent=BROWSER)
    assert record_hits(world, [early, late]) == [HitResult(True, "too_soon"), HitResult(True, "")]
    world.commit()
    figures = _totals(world)
    assert (figures["views"], figures["unique_views"], figures["machine_views"]) == (1, 1, 1)


def test_unknown_subscribers_and_deleted_campaigns_write_nothing(world: Session) -> None:
    camp = campaign(world, "c")
    ana = subscriber(world, "ana@example.org")
    world.commit()
    hits = [
        Hit("view", camp.id, "8d3f1a52-7c1e-4a0b-9f7e-2c6d5b4a3e21", T0),
        Hit("view", camp.id + 1, ana.uuid, T0),
        Hit("view", camp.id, ana.uuid, T0, user_agent=BROWSER),
        Hit("view", camp.id, ANONYMOUS, T0, user_agent=BROWSER),
    ]
    outcomes = record_hits(world, hits)
    world.commit()
    assert isinstance(outcomes[0], UnknownSubscriber)
    assert isinstance(outcomes[1], NotFound)
    assert outcomes[2:] == [HitResult(True, ""), HitResult(True, "")]
    assert sorted(world.scalars(select(CampaignView.subscriber_id)), key=str) == [ana.id, None]
    assert world.scalar(select(func.sum(AnalyticsChange.views))) == 2


def test_disabled_tracking_records_nothing(world: Session) -> None:
    camp = campaign(world, "c")
    ana = subscriber(world, "ana@example.org")
    settings.set_value(world, "privacy.disable_tracking", True)
    world.commit()
    assert record_hits(world, [Hit("view", camp.id, ana.uuid, T0)]) == [HitResult(False, "")]
    world.commit()
    assert world.scalar(select(func.count()).select_from(CampaignView)) == 0


def test_concurrent_writers_count_a_first_open_once(
    world: Session, session_maker: sessionmaker[Session]
) -> None:
    camp = campaign(world, "c")
    people = [subscriber(world, f"p{n}@example.org") for n in range(3)]
    for person in people:
        send(world, camp, person, "sent", "", at=T0 - timedelta(hours=1))
    world.commit()
    uuids = [p.uuid for p in people]
    barrier = threading.Barrier(6)
    failures: list[BaseException] = []

    def writer(seed: int) -> None:
        try:
            barrier.wait()
            for _ in range(10):
                hits = [
                    Hit("view", camp.id, uuids[(seed + n) % 3], T0 + timedelta(minutes=n + 1),
                        user_agent=BROWSER)
                    for n in range(3)
                ]  # fmt: skip
                with session_maker() as session:
                    record_hits(session, hits)
                    session.commit()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    figures = _totals(world)
    assert (figures["views"], figures["unique_views"]) == (180, 3)
    assert world.scalar(select(func.count()).select_from(CampaignEngagement)) == 3
