"""What an upload may be: its name made safe, its extension allowed, its content agreeing.

Nothing here trusts what the uploader said. The type a file is stored and served with comes from
its content (libmagic, through python-magic, reads the first bytes), and it must agree with the
extension when stmails knows what that extension holds. Content that a browser could run as a
page (HTML, XHTML, XML carrying HTML) is refused whatever its name, and so are the extensions
a static web server would serve as a page or a script (`DENIED_EXTENSIONS`), even when
`upload.extensions` holds `*`. SVG is accepted (listmonk's default list names it) but is only
ever served as a download with a sandboxing Content-Security-Policy (see `web.api.media`).
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import dataclass
from typing import BinaryIO

import magic
from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from stmails.services.errors import InvalidInput

# How much of a file the content checks read: libmagic's rules look at the first bytes, and the
# HTML scan below at the same window.
SNIFF_BYTES = 64 * 1024
# Longest stored name, in characters (the column holds 255; "thumb_" and a suffix must fit).
MAX_NAME = 180
# The type of anything whose content stmails does not recognise.
OCTET_STREAM = "application/octet-stream"
SVG = "image/svg+xml"

# Extensions never accepted, whatever `upload.extensions` says: a web server in front of the
# upload folder would serve these as pages or scripts on the site's own origin.
DENIED_EXTENSIONS = frozenset(
    {
        "htm", "html", "shtml", "xhtml", "xht", "mht", "mhtml", "hta", "htc",
        "js", "mjs", "cjs", "jsp", "php", "phtml", "asp", "aspx", "cgi", "pl", "py",
        "xml", "xsl", "xslt", "svgz", "swf", "vbs", "wsf",
    }
)  # fmt: skip

# Types libmagic reports for content a browser could run as a document.
_ACTIVE_TYPES = frozenset({"text/html", "application/xhtml+xml", "text/javascript"})
_XML_TYPES = frozenset({"text/xml", "application/xml"})
# Markup that makes text content a page when a browser is talked into rendering it.
_HTML_MARKERS = (
    b"<html",
    b"<script",
    b"<iframe",
    b"<!doctype html",
    b"<body",
    b"<object",
    b"<embed",
    b"http://www.w3.org/1999/xhtml",
)
_SVG_ROOTS = frozenset({"svg", "{http://www.w3.org/2000/svg}svg"})


@dataclass(frozen=True, slots=True)
class Kind:
    """What an extension promises: the types its content may sniff as, the type it is served
    with, whether browsers may show it inline, and Pillow's format name for raster images."""

    content_type: str
    sniffed: frozenset[str]
    inline: bool = False
    image_format: str | None = None


def _kind(
    content_type: str, *also: str, inline: bool = False, image_format: str | None = None
) -> Kind:
    return Kind(content_type, frozenset({content_type, *also}), inline, image_format)


_ZIP = "application/zip"
_OOXML = "application/vnd.openxmlformats-officedocument."
_ODF = "application/vnd.oasis.opendocument."
_JPEG = _kind("image/jpeg", inline=True, image_format="JPEG")
# The extensions whose content stmails checks. Another extension (allowed through `*`) is kept
# as application/octet-stream and served as a download.
KINDS: dict[str, Kind] = {
    "jpg": _JPEG,
    "jpeg": _JPEG,
    "png": _kind("image/png", inline=True, image_format="PNG"),
    "gif": _kind("image/gif", inline=True, image_format="GIF"),
    "webp": _kind("image/webp", inline=True, image_format="WEBP"),
    "svg": _kind(SVG, *_XML_TYPES),
    "pdf": _kind("application/pdf", inline=True),
    "txt": _kind("text/plain"),
    "csv": _kind("text/csv", "text/plain", "application/csv"),
    "zip": _kind(_ZIP),
    "docx": _kind(_OOXML + "wordprocessingml.document", _ZIP),
    "xlsx": _kind(_OOXML + "spreadsheetml.sheet", _ZIP),
    "pptx": _kind(_OOXML + "presentationml.presentation", _ZIP),
    "odt": _kind(_ODF + "text", _ZIP),
    "ods": _kind(_ODF + "spreadsheet", _ZIP),
    "odp": _kind(_ODF + "presentation", _ZIP),
    "mp3": _kind("audio/mpeg"),
    "mp4": _kind("video/mp4"),
}
IMAGE_EXTENSIONS = frozenset(ext for ext, kind in KINDS.items() if kind.image_format)
# The stored types browsers may show in place (raster images and PDF); others are downloads.
INLINE_TYPES = frozenset(kind.content_type for kind in KINDS.values() if kind.inline)

# Characters kept in names: letters and digits of any script, and a few marks that are safe in
# paths and URLs. Runs of anything else become one hyphen.
_UNSAFE_RUN = re.compile(r"[^\w.()+-]+")
_HYPHENS = re.compile(r"-{2,}")


class UploadRefused(InvalidInput):
    """The upload is not accepted; `field` is "file" and the message says why."""

    def __init__(self, message: str) -> None:
        super().__init__("file", message)


def extension_of(name: str) -> str:
    """The lower-case extension of `name` without its dot ('' when there is none)."""
    stem, dot, ext = name.rpartition(".")
    return ext.lower() if dot and stem else ""


def safe_filename(name: str) -> str:
    """`name` as a stored file may be called: the last path segment only (either slash), no
    control or format characters (so no right-to-left override hides the real extension), no
    leading dots, spaces and other unsafe characters turned into hyphens, at most MAX_NAME
    characters with the extension kept. A name with nothing left gets a random one."""
    name = unicodedata.normalize("NFC", name)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] not in ("C", "Z") or c == " ")
    name = _HYPHENS.sub("-", _UNSAFE_RUN.sub("-", name.strip()))
    name = name.lstrip(".-").rstrip(".-")
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    stem = stem.rstrip(".-")
    ext = ext[:16]
    if not stem:
        stem = secrets.token_hex(5)
    room = MAX_NAME - (len(ext) + 1 if ext else 0)
    stem = stem[:room].rstrip(".-") or secrets.token_hex(5)
    return f"{stem}.{ext}" if ext else stem


def with_suffix(name: str, suffix: str) -> str:
    """`name` with `_suffix` before its extension (listmonk's way of making a name unique)."""
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        return f"{name}_{suffix}"
    return f"{stem}_{suffix}.{ext}"


@dataclass(frozen=True, slots=True)
class Verdict:
    """An accepted upload's type: what to store and serve it as, and how."""

    extension: str
    content_type: str
    image_format: str | None


def check_extension(name: str, allowed: tuple[str, ...]) -> str:
    """The extension of `name` when the setting `allowed` (upload.extensions) admits it;
    UploadRefused otherwise."""
    ext = extension_of(name)
    shown = f".{ext}" if ext else "a name without an extension"
    if ext in DENIED_EXTENSIONS:
        raise UploadRefused(f"{shown} files are never accepted (a browser would run them)")
    if ext in allowed or "*" in allowed:
        return ext
    raise UploadRefused(f"{shown} is not among the allowed extensions ({', '.join(allowed)})")


def sniff(head: bytes) -> str:
    """The MIME type libmagic reads in `head` (the first bytes of a file)."""
    found: str = magic.from_buffer(head, mime=True)
    return found.lower()


def looks_like_html(head: bytes) -> bool:
    """True when the text in `head` carries markup that makes a browser render it as a page."""
    lowered = head.lower()
    return any(marker in lowered for marker in _HTML_MARKERS)


def judge(name: str, file: BinaryIO, allowed: tuple[str, ...]) -> Verdict:
    """What the upload called `name` with content `file` is, or UploadRefused saying why not.

    Reads the first SNIFF_BYTES (and all of an SVG, to parse it); leaves `file` at its start.
    """
    ext = check_extension(name, allowed)
    file.seek(0)
    head = file.read(SNIFF_BYTES)
    file.seek(0)
    if not head:
        raise UploadRefused("the file is empty")
    sniffed = sniff(head)
    textual = sniffed.startswith("text/") or sniffed in _XML_TYPES
    if sniffed in _ACTIVE_TYPES or (textual and ext != "svg" and looks_like_html(head)):
        raise UploadRefused(f"HTML or script content is not accepted (found {sniffed})")
    kind = KINDS.get(ext)
    if kind is None:
        if sniffed == SVG or sniffed in _XML_TYPES:
            raise UploadRefused(f"{sniffed} content is only accepted as .svg")
        return Verdict(ext, OCTET_STREAM, None)
    if sniffed not in kind.sniffed:
        raise UploadRefused(f"the content is {sniffed}, not what .{ext} files hold")
    if ext == "svg":
        _check_svg(file)
    return Verdict(ext, kind.content_type, kind.image_format)


def _check_svg(file: BinaryIO) -> None:
    # defusedxml refuses entity declarations and external references, so parsing costs time
    # in proportion to the file's size (bounded by upload.max_file_size); each element is
    # dropped once read, so memory stays small however large the document.
    root = ""
    try:
        for event, element in ElementTree.iterparse(file, events=("start", "end")):
            if event == "start":
                root = root or element.tag
            else:
                element.clear()
    except (ElementTree.ParseError, DefusedXmlException) as exc:
        raise UploadRefused(f"not a well-formed SVG document ({exc})") from None
    finally:
        file.seek(0)
    if root not in _SVG_ROOTS:
        raise UploadRefused(f"not an SVG document (its root element is {root!r})")
