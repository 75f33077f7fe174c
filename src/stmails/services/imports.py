"""CSV subscriber import as listmonk does it: `email,name,attributes` rows into the database.

The file has a header row naming its columns: `email` (required), `name`, and `attributes` (a
JSON object as text). `mode` is `subscribe` (add to `lists`) or `blocklist` (mark the addresses
blocklisted, creating the missing ones). With `overwrite`, existing subscribers get the file's
name and attributes and their subscriptions to `lists` the given status; without it they are
left as they are, but are still subscribed to the lists they were not on (as listmonk does).
Rows are committed in chunks of a few statements each, so a large file makes progress visible
at thousands of rows a second, and a bad row is logged and skipped, never fatal. In subscribe
mode every row that is stored is verified on the way in as `verify.on_subscribe` says
(`services.intake`): a refused address is a skipped row, a flagged one is stored with
`_verify` in its attributes.
"""

from __future__ import annotations

import csv
import io
import threading
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

import orjson
from sqlalchemy import insert, select, update
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from stmails.core.json_depth import MAX_JSON_DEPTH, too_deep
from stmails.db.models import SUBSCRIPTION_STATUSES, MailingList, Subscriber
from stmails.db.types import normalize_email, utcnow
from stmails.services import intake, subscribers
from stmails.services.errors import InvalidInput
from stmails.services.public import DomainFilter

CHUNK_ROWS = 500
# A ZIP upload (listmonk's import takes one) starts with a local file header; its first `.csv`
# member is imported, decompressed as it is read, up to this many bytes.
ZIP_MAGIC = b"PK\x03\x04"
MAX_UNZIPPED_BYTES = 1 << 30
MAX_LOG_LINES = 1000
MAX_FIELD_CHARS = 64 * 1024
MODES = ("subscribe", "blocklist")
FORBIDDEN_DELIMITERS = ('"', "\r", "\n")


@dataclass(frozen=True, slots=True)
class ImportParams:
    """listmonk's `params` of `POST /api/import/subscribers`."""

    mode: str = "subscribe"
    delimiter: str = ","
    lists: tuple[int, ...] = ()
    overwrite: bool = False
    subscription_status: str = "unconfirmed"


def parse_params(text: str) -> ImportParams:
    """ImportParams from the `params` JSON text; InvalidInput naming the bad field."""
    try:
        raw = orjson.loads(text) if text.strip() else {}
    except orjson.JSONDecodeError:
        raise InvalidInput("params", "not valid JSON") from None
    if too_deep(raw):
        raise InvalidInput("params", f"nests deeper than {MAX_JSON_DEPTH} levels")
    if not isinstance(raw, dict):
        raise InvalidInput("params", "must be a JSON object")
    mode = raw.get("mode", "subscribe")
    if mode not in MODES:
        raise InvalidInput("params.mode", "'subscribe' or 'blocklist'")
    delimiter = raw.get("delim", raw.get("delimiter", ","))
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in FORBIDDEN_DELIMITERS:
        raise InvalidInput("params.delim", "a single character such as ','")
    lists = raw.get("lists") or []
    if not isinstance(lists, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in lists
    ):
        raise InvalidInput("params.lists", "an array of list ids")
    overwrite = raw.get("overwrite", False)
    if not isinstance(overwrite, bool):
        raise InvalidInput("params.overwrite", "true or false")
    status = raw.get("subscription_status") or "unconfirmed"
    if status not in SUBSCRIPTION_STATUSES:
        raise InvalidInput(
            "params.subscription_status", f"one of {', '.join(SUBSCRIPTION_STATUSES)}"
        )
    return ImportParams(mode, delimiter, tuple(dict.fromkeys(lists)), overwrite, status)


@dataclass(slots=True)
class ImportStatus:
    """What `GET /api/import/subscribers` reports, and the log lines of the current import."""

    name: str = ""
    total: int = 0
    imported: int = 0
    status: str = "none"
    log: list[str] = field(default_factory=list)

    def note(self, line: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y/%m/%d %H:%M:%S")
        if len(self.log) < MAX_LOG_LINES:
            self.log.append(f"{stamp} {line}")
        elif len(self.log) == MAX_LOG_LINES:
            self.log.append(f"{stamp} (further log lines omitted)")


@dataclass(frozen=True, slots=True)
class Row:
    line: int
    email: str
    name: str
    attribs: dict[str, Any]


def read_rows(stream: IO[str], delimiter: str, status: ImportStatus) -> Iterator[Row]:
    """Rows of the CSV text; rows that cannot be read are logged and skipped."""
    csv.field_size_limit(MAX_FIELD_CHARS)
    reader = csv.reader(stream, delimiter=delimiter)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise InvalidInput("file", "empty") from None
    if "email" not in header:
        raise InvalidInput("file", "the header row has no 'email' column")
    email_at = header.index("email")
    name_at = header.index("name") if "name" in header else None
    attribs_at = header.index("attributes") if "attributes" in header else None
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            status.total += 1
            status.note(f"line {reader.line_num}: unreadable ({exc}); skipped")
            continue
        if not any(c.strip() for c in cells):
            continue
        status.total += 1
        try:
            attribs: dict[str, Any] = {}
            if attribs_at is not None and attribs_at < len(cells) and cells[attribs_at].strip():
                attribs = orjson.loads(cells[attribs_at])
                if not isinstance(attribs, dict):
                    raise ValueError("attributes is not a JSON object")
                if too_deep(attribs):
                    raise ValueError(f"attributes nest deeper than {MAX_JSON_DEPTH} levels")
            email = cells[email_at] if email_at < len(cells) else ""
            name = cells[name_at] if name_at is not None and name_at < len(cells) else ""
        except ValueError as exc:
            status.note(f"line {reader.line_num}: {exc}; skipped")
            continue
        yield Row(reader.line_num, email, name, attribs)


@dataclass(slots=True)
class _Wanted:
    """One address of a chunk: its first row, and the row whose data counts (the last one
    with overwrite, else the first)."""

    email: str
    row: Row
    attribs: dict[str, Any] | None = None


def _import_chunk(
    session: Session,
    rows: list[Row],
    params: ImportParams,
    check: intake.IntakeCheck,
    status: ImportStatus,
    now: datetime,
) -> None:
    """Imports `rows` in a handful of statements: one lookup of the existing addresses, one
    insert of the new subscribers, one update of the overwritten ones, one subscription pass.

    The result is that of importing the rows one after another: a repeated address is the same
    subscriber (its later rows overwrite it when `overwrite`). Rows refused by validation or by
    the intake check are logged and skipped; a database error fails the chunk (the caller then
    imports it row by row).
    """
    wanted: dict[str, _Wanted] = {}
    # privacy.domain_blocklist / domain_allowlist apply to imported subscribers as to sign-ups.
    domains = DomainFilter.current(session) if params.mode == "subscribe" else DomainFilter()
    for row in rows:
        try:
            email = subscribers.clean_email(row.email)
        except InvalidInput as exc:
            status.note(f"line {row.line}: {exc}; skipped")
            continue
        if domains.refuses(email):
            status.note(f"line {row.line}: the domain of {email[:320]!r} is not accepted; skipped")
            continue
        key = normalize_email(email)
        seen = wanted.get(key)
        if seen is None:
            wanted[key] = _Wanted(email, row)
        elif params.overwrite:
            seen.row = row
        status.imported += 1
    if not wanted:
        return
    existing = {
        normalize_email(email): (sub_id, sub_status)
        for sub_id, email, sub_status in session.execute(
            select(Subscriber.id, Subscriber.email, Subscriber.status).where(
                subscribers.email_in(wanted)
            )
        )
    }
    if params.mode == "subscribe":
        for key, item in list(wanted.items()):
            if key in existing and not params.overwrite:
                continue
            try:
                item.attribs = dict(intake.screen(check, item.email, item.row.attribs) or {})
            except InvalidInput as exc:
                status.note(f"line {item.row.line}: {exc}; skipped")
                status.imported -= 1
                del wanted[key]
    new = [key for key in wanted if key not in existing]
    new_status = "blocklisted" if params.mode == "blocklist" else "enabled"
    if new:
        created = session.execute(
            insert(Subscriber).returning(Subscriber.id, Subscriber.email),
            [
                {
                    "email": wanted[key].email,
                    "name": wanted[key].row.name.strip()[:500] or wanted[key].email.split("@")[0],
                    "attribs": wanted[key].attribs or dict(wanted[key].row.attribs),
                    "status": new_status,
                    "created_at": now,
                    "updated_at": now,
                }
                for key in new
            ],
        )
        for sub_id, email in created:
            existing[normalize_email(email)] = (sub_id, new_status)
    if params.mode == "blocklist":
        subscribers.blocklist(session, [existing[key][0] for key in wanted], now=now)
        return
    if params.overwrite:
        overwritten = [key for key in wanted if key not in new]
        if overwritten:
            session.execute(
                update(Subscriber),
                [
                    {
                        "id": existing[key][0],
                        "attribs": wanted[key].attribs or {},
                        "updated_at": now,
                        # A row without a name keeps the subscriber's name.
                        **(
                            {"name": wanted[key].row.name.strip()[:500]}
                            if wanted[key].row.name.strip()
                            else {}
                        ),
                    }
                    for key in overwritten
                ],
            )
    if params.lists:
        subscribers.subscribe(
            session,
            [existing[key][0] for key in wanted if existing[key][1] != "blocklisted"],
            list(params.lists),
            status=params.subscription_status,
            update_existing=params.overwrite,
            now=now,
        )


def check_lists(session: Session, params: ImportParams) -> None:
    """InvalidInput when `params.lists` names a list that does not exist."""
    if not params.lists:
        return
    found = {m.id for m in session.query(MailingList).filter(MailingList.id.in_(params.lists))}
    missing = [i for i in params.lists if i not in found]
    if missing:
        raise InvalidInput("params.lists", f"unknown list id(s) {', '.join(map(str, missing))}")


def run_import(
    sessions: Callable[[], Session],
    rows: Iterable[Row],
    params: ImportParams,
    status: ImportStatus,
    cancelled: threading.Event | None = None,
    checkpoint: Callable[[Session], bool] | None = None,
    pause_seconds: float = 0.0,
) -> None:
    """Imports `rows`, committing every CHUNK_ROWS; bad rows are logged and skipped.

    `status.total` counts the rows read (by `read_rows`), `status.imported` those stored. The
    import stops before its next row once `cancelled` is set. `checkpoint(session)`, when
    given, runs in each chunk's transaction just before its commit (to store the progress with
    the rows it counts); when it returns True the import stops after that chunk. After each
    commit the import sleeps `pause_seconds`: SQLite has one write lock, and a writer that takes
    it again at once would keep the others (the bounce writer) waiting until it is done.
    """
    chunk: list[Row] = []
    stop = threading.Event() if cancelled is None else cancelled

    def attempt(session: Session, rows: list[Row], check: intake.IntakeCheck) -> Exception | None:
        # One savepoint for `rows`; what the database refuses leaves no trace, in the
        # database or in the status.
        imported_before, log_before = status.imported, len(status.log)
        try:
            with session.begin_nested():
                _import_chunk(session, rows, params, check, status, utcnow())
        except (IntegrityError, DataError) as exc:
            status.imported = imported_before
            del status.log[log_before:]
            return exc
        return None

    def flush() -> None:
        with sessions() as session:
            check = intake.current(session)
            refused = attempt(session, chunk, check)
            if refused is not None:
                # Something only the database could tell (e.g. a value too long for a column,
                # or an address another writer added meanwhile): find the row, one at a time.
                status.note(
                    f"lines {chunk[0].line}-{chunk[-1].line}: {_first_line(refused)}; "
                    "importing them one by one"
                )
                for row in chunk:
                    row_refused = attempt(session, [row], check)
                    if row_refused is not None:
                        status.note(f"line {row.line}: {_first_line(row_refused)}; skipped")
            if checkpoint is not None and checkpoint(session):
                stop.set()
            session.commit()
        chunk.clear()
        if pause_seconds:
            time.sleep(pause_seconds)

    for row in rows:
        if stop.is_set():
            status.note("import stopped")
            status.status = "stopped"
            return
        chunk.append(row)
        if len(chunk) >= CHUNK_ROWS:
            flush()
    if chunk:
        flush()


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__


def zip_csv_member(upload: IO[bytes]) -> str | None:
    """None when `upload` is not a ZIP archive; else the name of its first `.csv` member (the
    one listmonk imports). InvalidInput when the archive cannot be read, holds no CSV file, or
    says the file is larger than MAX_UNZIPPED_BYTES. The upload is left at its start."""
    upload.seek(0)
    is_zip = upload.read(len(ZIP_MAGIC)) == ZIP_MAGIC
    upload.seek(0)
    if not is_zip:
        return None
    try:
        with zipfile.ZipFile(upload) as archive:
            members = [
                m
                for m in archive.infolist()
                if not m.is_dir() and m.filename.lower().endswith(".csv")
            ]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise InvalidInput("file", f"not a readable ZIP archive ({exc})") from None
    finally:
        upload.seek(0)
    if not members:
        raise InvalidInput("file", "the ZIP archive holds no .csv file")
    if members[0].file_size > MAX_UNZIPPED_BYTES:
        raise InvalidInput("file", f"the CSV file in the ZIP is larger than {MAX_UNZIPPED_BYTES}")
    return members[0].filename


class _Capped(io.RawIOBase):
    """A binary stream that refuses to read past `limit` bytes (a ZIP member's declared size
    may be false): InvalidInput then."""

    def __init__(self, inner: IO[bytes], limit: int) -> None:
        super().__init__()
        self._inner = inner
        self._left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._inner.read(min(len(buffer), self._left + 1))
        if len(data) > self._left:
            raise InvalidInput("file", "the CSV file in the ZIP is larger than its limit")
        self._left -= len(data)
        buffer[: len(data)] = data
        return len(data)


@contextmanager
def csv_bytes(upload: IO[bytes], member: str | None) -> Iterator[IO[bytes]]:
    """The CSV bytes of an upload: the upload itself, or (`member` of zip_csv_member) that
    member of the ZIP archive, decompressed as it is read, at most MAX_UNZIPPED_BYTES."""
    upload.seek(0)
    if member is None:
        yield upload
        return
    with zipfile.ZipFile(upload) as archive, archive.open(member) as inner:
        yield io.BufferedReader(_Capped(inner, MAX_UNZIPPED_BYTES))


def text_stream(binary: IO[bytes]) -> IO[str]:
    """The uploaded bytes as text: UTF-8 (a BOM is dropped), undecodable bytes replaced."""
    return io.TextIOWrapper(binary, encoding="utf-8-sig", errors="replace", newline="")
