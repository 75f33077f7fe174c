"""listmonk's media API and the public `/uploads/...` files.

- `GET /api/media?query=&page=&per_page=` (media:get): the configured provider's items, newest
  first, in listmonk's paginated envelope; `query` matches filenames.
- `GET /api/media/{id}` (media:get), `DELETE /api/media/{id}` (media:manage).
- `POST /api/media` (media:manage): a multipart/form-data body whose `file` field is the upload;
  at most `upload.max_file_size` kilobytes (413 past it, read no further).

An item reads as listmonk's: `id`, `uuid`, `filename`, `content_type`, `created_at`,
`thumb_url` (null when there is none), `provider`, `meta` (`width`, `height` of images) and `url`.

`GET /uploads/{name}` serves a recorded file or thumbnail (nothing else in the folder) to
anybody, as mail clients fetch images: with its checked type, `X-Content-Type-Options: nosniff`,
`Content-Security-Policy: sandbox; default-src 'none'` (no script runs even in a file taken for
a page), and `Content-Disposition: attachment` for everything but raster images and PDFs.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.responses import Response, StreamingResponse

from stmails.db.handles import Session
from stmails.db.models import Media
from stmails.services import settings as settings_service
from stmails.services.media import checks, library
from stmails.services.media.config import (
    MAX_FILE_SIZE_KB,
    SERVED_PREFIX,
    UploadConfig,
    proposed_config,
)
from stmails.services.media.storage import (
    NotStored,
    StorageError,
    check_settings,
    chunks,
    storage_for,
)
from stmails.web.body import run_db
from stmails.web.deps import app_state, require_user
from stmails.web.errors import ApiError, bad_request, log, not_found, unavailable
from stmails.web.permissions import require_permission
from stmails.web.responses import JSONResponse, data, parse_page, timestamp

router = APIRouter(tags=["media"], dependencies=[Depends(require_user)])
files_router = APIRouter(tags=["media"])

UPLOAD_PATH = "/api/media"
# Room for the multipart boundaries and part headers around the file.
FORM_OVERHEAD = 64 * 1024
# The body cap of POST /api/media (the largest upload.max_file_size allows); the route holds
# each upload to the setting in force.
MAX_BODY_BYTES = MAX_FILE_SIZE_KB * 1024 + FORM_OVERHEAD

# Headers on every served file: the browser takes the type as given and runs nothing.
SAFE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox; default-src 'none'",
    "Cross-Origin-Resource-Policy": "cross-origin",
    "Cache-Control": "public, max-age=3600",
}


def media_view(row: Media, url: Callable[[str], str]) -> dict[str, Any]:
    """An item as listmonk shows it; `url(name)` is the URL of a stored name."""
    return {
        "id": row.id,
        "uuid": row.uuid,
        "filename": row.filename,
        "content_type": row.content_type,
        "created_at": timestamp(row.created_at),
        "thumb_url": url(row.thumb) if row.thumb else None,
        "provider": row.provider,
        "meta": row.meta,
        "url": url(row.filename),
    }


View = Callable[[Media], dict[str, Any]]


def _viewer(request: Request, config: UploadConfig) -> View:
    """A function from an item to its view, with each provider's store made once."""
    state = app_state(request)
    stores: dict[str, Any] = {}

    def view(row: Media) -> dict[str, Any]:
        storage = stores.get(row.provider)
        if storage is None:
            storage = stores[row.provider] = storage_for(
                config, state.settings.data_dir, row.provider
            )
        return media_view(row, lambda name: storage.url(name, state.settings.root_url))

    return view


@router.get(
    "/media", dependencies=[require_permission("media:get")], summary="Uploaded media files"
)
async def list_media(request: Request) -> JSONResponse:
    params = request.query_params
    paging = parse_page(params.get("page"), params.get("per_page"))
    query = params.get("query", "")[:200]

    def work(session: Session) -> dict[str, Any]:
        config = library.upload_config(session)
        found = library.list_media(
            session, config.provider, query=query, page=paging.page, per_page=paging.per_page
        )
        view = _viewer(request, config)
        return paging.envelope([view(r) for r in found.results], found.total, query)

    return data(await run_db(request, work))


@router.get(
    "/media/{media_id}",
    dependencies=[require_permission("media:get")],
    summary="One uploaded media file",
)
async def get_media(request: Request, media_id: int) -> JSONResponse:
    def work(session: Session) -> dict[str, Any]:
        return _viewer(request, library.upload_config(session))(library.get(session, media_id))

    return data(await run_db(request, work))


class _BodyTooLarge(Exception):
    pass


async def _capped(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            raise _BodyTooLarge
        yield chunk


def _too_large(config: UploadConfig) -> ApiError:
    return ApiError(413, f"file: larger than upload.max_file_size ({config.max_file_size_kb} KB)")


async def _read_form(request: Request, config: UploadConfig) -> FormData:
    """The multipart form, read no further than the upload limit allows."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "multipart/form-data":
        raise bad_request("file: send the file as multipart/form-data (field `file`)")
    limit = config.max_bytes + FORM_OVERHEAD
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(config)
    parser = MultiPartParser(
        request.headers, _capped(request, limit), max_files=1, max_fields=4, max_part_size=4096
    )
    try:
        return await parser.parse()
    except _BodyTooLarge:
        raise _too_large(config) from None
    except MultiPartException as exc:
        raise bad_request(f"file: {exc.message}") from None


@router.post(
    "/media",
    dependencies=[require_permission("media:manage")],
    summary="Upload a media file (multipart field `file`)",
)
async def upload_media(request: Request) -> JSONResponse:
    state = app_state(request)
    config = await run_db(request, library.upload_config)
    form = await _read_form(request, config)
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise bad_request("file: required (the multipart field `file`)")
        size = upload.size if upload.size is not None else 0
        if size > config.max_bytes:
            raise _too_large(config)
        checked = await run_in_threadpool(
            library.check_upload, config, upload.filename or "", upload.file, size
        )
        storage = storage_for(config, state.settings.data_dir)
        try:
            row = await run_in_threadpool(
                library.add, state.sessions, storage, checked, upload.file
            )
        except StorageError as exc:
            log.warning("media: upload of %s failed: %s", checked.name, exc)
            raise unavailable(f"the media store failed: {exc}") from None
    finally:
        await form.close()
    return data(_viewer(request, config)(row))


@router.delete(
    "/media/{media_id}",
    dependencies=[require_permission("media:manage")],
    summary="Delete an uploaded media file",
)
async def delete_media(request: Request, media_id: int) -> JSONResponse:
    state = app_state(request)
    config = await run_db(request, library.upload_config)
    stores = {
        provider: storage_for(config, state.settings.data_dir, provider)
        for provider in ("filesystem", "s3")
        if provider == "filesystem" or config.s3.bucket
    }
    await run_in_threadpool(library.remove, state.sessions, stores, media_id)
    return data(True)


def _disposition(kind: str, name: str) -> str:
    # RFC 6266: an ASCII fallback and the exact name in RFC 5987 encoding.
    fallback = "".join(c if (c.isascii() and c.isalnum()) or c in "._-()+" else "_" for c in name)
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name)}"


@files_router.get(SERVED_PREFIX + "/{name:path}", summary="An uploaded file or thumbnail (public)")
async def serve_upload(request: Request, name: str) -> Response:
    return await _serve(request, name)


# HEAD answers GET's headers without the body (kept out of the API document: one operation).
@files_router.head(SERVED_PREFIX + "/{name:path}", include_in_schema=False)
async def serve_upload_head(request: Request, name: str) -> Response:
    return await _serve(request, name)


async def _serve(request: Request, name: str) -> Response:
    state = app_state(request)

    def find(session: Session) -> tuple[UploadConfig, Media] | None:
        config = library.upload_config(session)
        found = library.find_served(session, _served_providers(config), name)
        return None if found is None else (config, found)

    found = await run_db(request, find)
    if found is None:
        raise not_found("file")
    config, row = found
    storage = storage_for(config, state.settings.data_dir, row.provider)
    try:
        stream, size = await run_in_threadpool(storage.open, name)
    except NotStored:
        log.warning("media: %s is recorded but missing from %s", name, row.provider)
        raise not_found("file") from None
    except StorageError as exc:
        log.warning("media: cannot read %s: %s", name, exc)
        raise unavailable(f"the media store failed: {exc}") from None
    inline = row.content_type in checks.INLINE_TYPES
    headers = {
        **SAFE_HEADERS,
        "Content-Length": str(size),
        "Content-Disposition": _disposition("inline" if inline else "attachment", name),
    }
    if request.method == "HEAD":
        stream.close()
        return Response(headers=headers, media_type=row.content_type)
    return StreamingResponse(chunks(stream), headers=headers, media_type=row.content_type)


def _served_providers(config: UploadConfig) -> tuple[str, ...]:
    """The providers whose files /uploads serves: the filesystem's always (links in mail sent
    earlier keep working, and a CDN in front fetches from here), S3's when its public URL is
    /uploads (listmonk serves S3 through the app then too)."""
    if config.s3.public_url == SERVED_PREFIX:
        return ("filesystem", "s3")
    return ("filesystem",)


async def check_upload_settings(request: Request, body: dict[str, Any]) -> None:
    """Before `PUT /api/settings` stores anything: when the body changes an `upload.*`
    setting, tries the resulting configuration (writes and deletes a probe file in the folder
    or bucket), outside any database transaction; InvalidInput (400) naming the setting at
    fault when it cannot work."""
    current = await run_db(request, settings_service.get_all)
    config = proposed_config(current, body)
    if config is not None:
        await run_in_threadpool(check_settings, config, app_state(request).settings.data_dir)
