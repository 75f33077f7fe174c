"""The media library: uploads checked and stored, listed, read back, deleted.

An upload is checked first (`checks.judge`: extension, content; `images.make_thumbnail`:
decodable within the pixel budget), then stored under a free name (its sanitised name, or that
name with `_xxxxxx` added, as listmonk does) with its thumbnail `thumb_<name>` beside it, and
only then recorded. Files are written outside any database transaction (a slow bucket never
holds SQLite's write lock); when the record cannot be committed the files are removed again.
Deleting removes the record first and then the files, so a file whose removal failed is no
longer served (`/uploads` serves only recorded names) and is logged.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from stmails.config import load_settings
from stmails.db.engine import read_only
from stmails.db.models import Media
from stmails.services import settings as settings_service
from stmails.services.errors import Conflict, NotFound
from stmails.services.media import checks, images
from stmails.services.media.config import DEFAULTS, MAX_FILE_SIZE_KB, UploadConfig
from stmails.services.media.storage import (
    NameTaken,
    NotStored,
    Storage,
    StorageError,
    read_all,
    storage_for,
)
from stmails.services.pages import Page, check_paging, count_of, paged

log = logging.getLogger("stmails.media")

THUMB_PREFIX = "thumb_"
# How many names an upload tries before giving up (each clash draws a new random suffix).
NAME_ATTEMPTS = 8


def upload_config(session: Session) -> UploadConfig:
    """The `upload.*` settings in force (a stored value that no longer validates reads as its
    default)."""
    return UploadConfig.from_values(
        {key: settings_service.get_valid(session, key) for key in DEFAULTS}
    )


@dataclass(slots=True)
class CheckedUpload:
    """An upload that passed the checks, ready to store."""

    name: str
    content_type: str
    thumbnail: bytes | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def check_upload(config: UploadConfig, filename: str, file: BinaryIO, size: int) -> CheckedUpload:
    """The upload `filename` (its content in `file`, `size` bytes) as it would be stored;
    checks.UploadRefused saying why it is not accepted. Decodes images (slow: call it on a
    worker thread)."""
    if size > config.max_bytes:
        raise checks.UploadRefused(
            f"{size} bytes is more than upload.max_file_size ({config.max_file_size_kb} KB)"
        )
    name = checks.safe_filename(filename)
    verdict = checks.judge(name, file, config.extensions)
    checked = CheckedUpload(name, verdict.content_type)
    if verdict.image_format is not None:
        thumb = images.make_thumbnail(file, verdict.image_format)
        checked.thumbnail = thumb.data
        checked.meta = {"width": thumb.width, "height": thumb.height}
    return checked


def _names_in_use(session: Session, provider: str, names: list[str]) -> bool:
    query = select(func.count(Media.id)).where(
        Media.provider == provider,
        or_(Media.filename.in_(names), Media.thumb.in_(names)),
    )
    return bool(session.scalar(query))


def _thumb_name(name: str, checked: CheckedUpload) -> str:
    if checked.thumbnail is not None:
        return f"{THUMB_PREFIX}{name}"
    # A vector image is its own thumbnail (as in listmonk).
    return name if checked.content_type == checks.SVG else ""


def add(
    sessions: sessionmaker[Session], storage: Storage, checked: CheckedUpload, file: BinaryIO
) -> Media:
    """Stores the checked upload under a free name and records it (committed on return).

    Conflict when no free name was found; StorageError when the store failed (nothing is
    left behind then)."""
    readers = read_only(sessions)
    name = checked.name
    for _ in range(NAME_ATTEMPTS):
        thumb = _thumb_name(name, checked)
        with readers() as session:
            taken = _names_in_use(session, storage.provider, [n for n in (name, thumb) if n])
        if not taken:
            stored = _store_files(storage, checked, file, name, thumb)
            if stored and _record(sessions, storage, checked, name, thumb):
                break
        name = checks.with_suffix(checked.name, secrets.token_hex(3))
    else:
        raise Conflict("file", f"no free name for {checked.name} after {NAME_ATTEMPTS} attempts")
    with readers() as session:
        row = session.scalars(
            select(Media).where(Media.provider == storage.provider, Media.filename == name)
        ).one()
        session.expunge(row)
    log.info("media: stored %s (%s) in %s", name, checked.content_type, storage.provider)
    return row


def _store_files(
    storage: Storage, checked: CheckedUpload, file: BinaryIO, name: str, thumb: str
) -> bool:
    """Writes the file and its thumbnail; False when either name is taken in the store."""
    file.seek(0)
    try:
        storage.put_new(name, file, checked.content_type)
    except NameTaken:
        return False
    if checked.thumbnail is None:
        return True
    try:
        storage.put_new(thumb, BytesIO(checked.thumbnail), checked.content_type)
    except NameTaken:
        _remove_quietly(storage, name)
        return False
    except BaseException:
        _remove_quietly(storage, name)
        raise
    return True


def _record(
    sessions: sessionmaker[Session],
    storage: Storage,
    checked: CheckedUpload,
    name: str,
    thumb: str,
) -> bool:
    """Inserts and commits the record; False (files removed) when the name was taken
    meanwhile. Any other failure removes the files and is raised."""
    try:
        with sessions() as session:
            session.add(
                Media(
                    provider=storage.provider,
                    filename=name,
                    thumb=thumb,
                    content_type=checked.content_type,
                    meta=checked.meta,
                )
            )
            session.commit()
        return True
    except IntegrityError:
        _remove_quietly(storage, name, thumb)
        return False
    except BaseException:
        _remove_quietly(storage, name, thumb)
        raise


def _remove_quietly(storage: Storage, *names: str) -> None:
    for name in names:
        if not name:
            continue
        try:
            storage.delete(name)
        except StorageError as exc:
            log.warning("media: could not remove %s from %s: %s", name, storage.provider, exc)


def get(session: Session, media_id: int) -> Media:
    """The media item `media_id`; NotFound when there is none."""
    row = session.get(Media, media_id)
    if row is None:
        raise NotFound(f"media {media_id} not found")
    return row


def list_media(
    session: Session, provider: str, *, query: str = "", page: int = 1, per_page: int | None = 20
) -> Page[Media]:
    """The items of `provider` whose filename contains `query` (any case), newest first."""
    check_paging(page, per_page)
    statement = select(Media).where(Media.provider == provider)
    if query.strip():
        pattern = query.strip().lower().replace("\\", "\\\\").replace("%", "\\%")
        pattern = pattern.replace("_", "\\_")
        statement = statement.where(func.lower(Media.filename).like(f"%{pattern}%", escape="\\"))
    total = count_of(session, statement)
    rows = session.scalars(
        paged(statement.order_by(Media.created_at.desc(), Media.id.desc()), page, per_page)
    ).all()
    return Page(list(rows), total, page, per_page)


def find_served(session: Session, providers: tuple[str, ...], name: str) -> Media | None:
    """The item of one of `providers` whose file or thumbnail is called `name`, if any."""
    return session.scalars(
        select(Media)
        .where(Media.provider.in_(providers), or_(Media.filename == name, Media.thumb == name))
        .order_by(Media.id)
    ).first()


def remove(sessions: sessionmaker[Session], stores: Mapping[str, Storage], media_id: int) -> None:
    """Deletes the record of `media_id` (committed), then its files from the store of its
    provider (`stores`); NotFound when there is no such item. A file that cannot be removed
    is logged and left (it is no longer served)."""
    with sessions() as session:
        row = get(session, media_id)
        provider, names = row.provider, (row.filename, row.thumb)
        # The SVG's thumbnail is the SVG itself: removed once.
        session.execute(delete(Media).where(Media.id == media_id))
        session.commit()
    storage = stores.get(provider)
    if storage is None:
        log.warning("media: %s deleted; its %s files were left (no such store)", names, provider)
        return
    _remove_quietly(storage, *dict.fromkeys(names))
    log.info("media: deleted %s from %s", names[0], provider)


def get_media_content(
    session: Session, media_id: int, *, data_dir: Path | None = None
) -> tuple[str, str, bytes]:
    """The media item `media_id` as an attachment: (filename, content_type, content).

    Reads from the store the item was uploaded to, under today's settings; `data_dir` is where a
    relative upload folder lives (default: the process settings' `data_dir`). NotFound when
    there is no such item or its file is gone; StorageError when the store cannot be read.
    """
    row = get(session, media_id)
    config = upload_config(session)
    folder = data_dir if data_dir is not None else load_settings().data_dir
    storage = storage_for(config, folder, row.provider)
    try:
        content = read_all(storage, row.filename, MAX_FILE_SIZE_KB * 1024)
    except NotStored:
        raise NotFound(f"media {media_id}: its file {row.filename} is missing") from None
    return row.filename, row.content_type, content
