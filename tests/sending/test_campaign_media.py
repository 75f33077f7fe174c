"""A campaign's media go with each of its messages as attachments, as listmonk sends them;
a campaign whose file is gone is refused at start rather than sent without it."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from mediafiles import image
from stmails.db.models import Campaign
from stmails.services import campaign_records as campaign_service
from stmails.services import settings as settings_service
from stmails.services.media import library
from stmails.services.media.storage import storage_for
from stmails.services.sending.campaigns import CampaignError, change_status

from .conftest import Sink, make_world, start
from .test_campaign_sender import config_for, runner_for


def _upload(factory: sessionmaker[Session], folder: Path, name: str, data: bytes) -> int:
    with factory() as session:
        settings_service.set_value(session, "upload.filesystem.upload_path", str(folder))
        session.commit()
        config = library.upload_config(session)
    checked = library.check_upload(config, name, io.BytesIO(data), len(data))
    row = library.add(factory, storage_for(config, folder), checked, io.BytesIO(data))
    return int(row.id)


def test_every_message_carries_the_campaigns_media(
    session_maker: sessionmaker[Session], smtp_sink: Sink, tmp_path: Path
) -> None:
    world = make_world(session_maker, count=3)
    picture = image("PNG", 40, 30)
    media_id = _upload(session_maker, tmp_path / "uploads", "plan.png", picture)
    with session_maker() as session:
        campaign = session.get(Campaign, world.campaign_id)
        assert campaign is not None
        campaign_service.set_media(session, campaign, [media_id])
        session.commit()
    config = config_for(smtp_sink)
    start(world, config)
    runner, pool = runner_for(world, config)
    report = runner.run(world.campaign_id)
    pool.close()
    assert report.finished and report.sent == 3
    for captured in smtp_sink.handler.messages:
        (attachment,) = list(captured.message.iter_attachments())
        assert attachment.get_filename() == "plan.png"
        assert attachment.get_content_type() == "image/png"
        assert attachment.get_content() == picture
        # The body is still there, before the file.
        assert "Hi User" in captured.message.get_body(preferencelist=("html",)).get_content()


def test_a_campaign_whose_file_is_gone_does_not_start(
    session_maker: sessionmaker[Session], smtp_sink: Sink, tmp_path: Path
) -> None:
    world = make_world(session_maker, count=1)
    folder = tmp_path / "uploads"
    media_id = _upload(session_maker, folder, "gone.png", image("PNG", 10, 10))
    with session_maker() as session:
        campaign = session.get(Campaign, world.campaign_id)
        assert campaign is not None
        campaign_service.set_media(session, campaign, [media_id])
        session.commit()
    for path in folder.iterdir():
        path.unlink()
    with session_maker() as session:
        campaign = session.get(Campaign, world.campaign_id)
        assert campaign is not None
        with pytest.raises(CampaignError, match=r"gone\.png"):
            change_status(session, campaign, "running", config_for(smtp_sink))
