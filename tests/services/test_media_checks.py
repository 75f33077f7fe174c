"""The media library's upload checks: names made safe, extensions allowed, content that must
agree with its extension, HTML refused, thumbnails within the pixel budget."""

from __future__ import annotations

import io
import time

import pytest
from PIL import Image

import mediafiles
from stmails.services.media import checks, images
from stmails.services.media.checks import UploadRefused, judge, safe_filename

LISTMONK_DEFAULT = ("jpg", "jpeg", "png", "gif", "svg", "*")


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\win.ini", "win.ini"),
        ("/var/lib/stmails/stmails.db", "stmails.db"),
        ("My Summer  Photo.JPG", "My-Summer-Photo.JPG"),
        ("\x00evil\x1f\x7f.png", "evil.png"),
        # A right-to-left override would show "photo_exe.png" as "photo_gnp.exe".
        ("photo_\u202egnp.exe", "photo_gnp.exe"),
        (".htaccess", "htaccess"),
        ("report?.pdf#x", "report.pdf-x"),
        ("照片 一.png", "照片-一.png"),
        ("a<b>\"c'|d.txt", "a-b-c-d.txt"),
    ],
)
def test_safe_filename_keeps_only_a_harmless_last_segment(given: str, stored: str) -> None:
    assert safe_filename(given) == stored


def test_safe_filename_names_the_nameless_and_shortens_the_long() -> None:
    for nothing in ("", "..", "....", "/", " . "):
        made = safe_filename(nothing)
        assert len(made) == 10 and made.isalnum(), (nothing, made)
    assert safe_filename(".png").endswith("") and "." not in safe_filename(".png")
    long = safe_filename("x" * 500 + ".jpeg")
    assert len(long) == checks.MAX_NAME and long.endswith("x.jpeg")


def test_with_suffix_goes_before_the_extension() -> None:
    assert checks.with_suffix("photo.jpg", "a1b2c3") == "photo_a1b2c3.jpg"
    assert checks.with_suffix("README", "a1b2c3") == "README_a1b2c3"


def test_extensions_are_checked_against_the_allowlist() -> None:
    assert checks.check_extension("a.PNG", ("png",)) == "png"
    with pytest.raises(UploadRefused, match=r"\.pdf is not among the allowed extensions"):
        checks.check_extension("a.pdf", ("jpg", "png"))
    with pytest.raises(UploadRefused, match="without an extension"):
        checks.check_extension("README", ("txt",))
    assert checks.check_extension("README", ("*",)) == ""
    # `*` never admits what a web server would serve as a page or script.
    for name in ("x.html", "x.HTM", "x.js", "x.xhtml", "x.svgz", "x.php"):
        with pytest.raises(UploadRefused, match="never accepted"):
            checks.check_extension(name, ("*",))


def _judge(name: str, content: bytes, allowed: tuple[str, ...] = LISTMONK_DEFAULT) -> str:
    file = io.BytesIO(content)
    verdict = judge(name, file, allowed)
    assert file.tell() == 0
    return verdict.content_type


def test_content_must_agree_with_its_extension() -> None:
    assert _judge("a.jpg", mediafiles.image("JPEG")) == "image/jpeg"
    assert _judge("a.png", mediafiles.image("PNG")) == "image/png"
    assert _judge("a.gif", mediafiles.animated_gif()) == "image/gif"
    assert _judge("a.webp", mediafiles.image("WEBP"), ("webp",)) == "image/webp"
    assert _judge("a.pdf", mediafiles.PDF) == "application/pdf"
    assert _judge("notes.txt", "déjà vu\n".encode()) == "text/plain"
    with pytest.raises(UploadRefused, match=r"content is image/jpeg, not what \.png files"):
        _judge("a.png", mediafiles.image("JPEG"))
    with pytest.raises(UploadRefused, match=r"not what \.pdf files hold"):
        _judge("a.pdf", mediafiles.image("PNG"))
    with pytest.raises(UploadRefused, match="empty"):
        _judge("a.png", b"")


def test_html_is_refused_whatever_it_is_called() -> None:
    for name in ("cat.png", "cat.jpg", "cat.gif", "notes.txt", "data.csv", "cat", "cat.dat"):
        with pytest.raises(UploadRefused, match="HTML or script content is not accepted"):
            _judge(name, mediafiles.HTML)
    # Text that a browser talked into rendering would run: refused too.
    with pytest.raises(UploadRefused, match="HTML or script"):
        _judge("figures.txt", mediafiles.TEXT_WITH_SCRIPT)
    xhtml = b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><body/></html>'
    with pytest.raises(UploadRefused, match="HTML or script"):
        _judge("page.dat", xhtml)


def test_svg_is_accepted_only_as_a_well_formed_svg() -> None:
    assert _judge("logo.svg", mediafiles.SVG) == "image/svg+xml"
    # Scripts inside SVG are kept: /uploads serves SVG only as a sandboxed download.
    assert _judge("logo.svg", mediafiles.SVG_WITH_SCRIPT) == "image/svg+xml"
    with pytest.raises(UploadRefused, match=r"only accepted as \.svg"):
        _judge("logo.dat", mediafiles.SVG)
    with pytest.raises(UploadRefused, match=r"not what \.png files hold"):
        _judge("logo.png", mediafiles.SVG)
    with pytest.raises(UploadRefused, match="not a well-formed SVG"):
        _judge("logo.svg", mediafiles.BILLION_LAUGHS)
    with pytest.raises(UploadRefused, match="not a well-formed SVG"):
        _judge("logo.svg", mediafiles.SVG[:-7])
    with pytest.raises(UploadRefused, match="root element is 'rss'"):
        _judge("feed.svg", b'<?xml version="1.0"?><rss><channel/></rss>')


def test_other_extensions_under_star_are_kept_as_downloads() -> None:
    assert _judge("invite.ics", b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n") == checks.OCTET_STREAM
    assert _judge("blob", bytes(range(256)) * 4) == checks.OCTET_STREAM
    with pytest.raises(UploadRefused, match="not among the allowed"):
        _judge("invite.ics", b"BEGIN:VCALENDAR\r\n", ("jpg", "png"))


def test_thumbnails_fit_in_250_pixels_in_the_original_format() -> None:
    for fmt, size in (("JPEG", (1600, 900)), ("PNG", (300, 1200)), ("WEBP", (500, 500))):
        thumb = images.make_thumbnail(io.BytesIO(mediafiles.image(fmt, *size)), fmt)
        assert (thumb.width, thumb.height) == size
        shown = Image.open(io.BytesIO(thumb.data))
        assert shown.format == fmt and max(shown.size) == images.THUMB_SIZE
    small = images.make_thumbnail(io.BytesIO(mediafiles.image("PNG", 40, 30)), "PNG")
    assert Image.open(io.BytesIO(small.data)).size == (40, 30)
    gif = images.make_thumbnail(io.BytesIO(mediafiles.animated_gif()), "GIF")
    first = Image.open(io.BytesIO(gif.data))
    assert first.format == "GIF" and getattr(first, "n_frames", 1) == 1
    assert first.convert("RGB").getpixel((5, 5)) == (255, 0, 0)


def test_a_photo_taken_sideways_gets_an_upright_thumbnail() -> None:
    photo = Image.new("RGB", (600, 300), "blue")
    exif = photo.getexif()
    # EXIF orientation 6: the camera was turned; viewers rotate the picture 90 degrees.
    exif[0x0112] = 6
    out = io.BytesIO()
    photo.save(out, format="JPEG", exif=exif)
    thumb = images.make_thumbnail(io.BytesIO(out.getvalue()), "JPEG")
    assert Image.open(io.BytesIO(thumb.data)).size == (125, 250)


def test_decompression_bombs_are_refused_before_decoding() -> None:
    assert Image.MAX_IMAGE_PIXELS == images.MAX_PIXELS
    started = time.monotonic()
    with pytest.raises(UploadRefused, match="is more than the 40,000,000 pixels allowed"):
        images.make_thumbnail(io.BytesIO(mediafiles.png_declaring(100_000, 100_000)), "PNG")
    # Between Pillow's warning and its error: refused by the same check.
    with pytest.raises(UploadRefused, match="is more than the 40,000,000 pixels allowed"):
        images.make_thumbnail(io.BytesIO(mediafiles.real_bomb()), "PNG")
    assert time.monotonic() - started < 5


def test_an_image_that_cannot_be_decoded_is_refused() -> None:
    whole = mediafiles.image("PNG", 300, 300)
    with pytest.raises(UploadRefused, match="cannot be decoded as PNG"):
        images.make_thumbnail(io.BytesIO(whole[: len(whole) // 2]), "PNG")
    with pytest.raises(UploadRefused, match="cannot be decoded as JPEG"):
        images.make_thumbnail(io.BytesIO(whole), "JPEG")
