"""Files for the media library's tests, made here: real images (Pillow), a PNG that declares more
pixels than it holds, SVG and PDF documents, and HTML dressed up as other things."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image


def image(fmt: str, width: int = 800, height: int = 600, mode: str = "RGB") -> bytes:
    """A real `fmt` (Pillow's name: JPEG, PNG, GIF, WEBP) image of that size."""
    out = io.BytesIO()
    Image.new(mode, (width, height), "red").save(out, format=fmt)
    return out.getvalue()


def animated_gif(frames: int = 3, size: tuple[int, int] = (400, 300)) -> bytes:
    """An animated GIF whose frames are red, green, blue, ..."""
    colours = ["red", "green", "blue", "yellow"]
    images = [Image.new("RGB", size, colours[i % len(colours)]) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, format="GIF", save_all=True, append_images=images[1:], duration=100)
    return out.getvalue()


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_declaring(width: int, height: int) -> bytes:
    """A small PNG whose header declares `width` x `height` pixels: a decompression bomb's
    header, with one highly compressible row of data behind it."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = zlib.compress(b"\x00" * (width + 1), 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", data)
        + _chunk(b"IEND", b"")
    )


def real_bomb(width: int = 7000, height: int = 7000) -> bytes:
    """A genuine grey PNG of width x height pixels: some 50 kB that decode to 49 MB."""
    out = io.BytesIO()
    Image.new("L", (width, height), 0).save(out, format="PNG", optimize=False)
    return out.getvalue()


SVG = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40">'
    b'<circle cx="20" cy="20" r="18" fill="teal"/></svg>'
)
SVG_WITH_SCRIPT = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40">'
    b"<script>document.title = 'pwned'</script><rect width='40' height='40'/></svg>"
)
BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
    b'<svg xmlns="http://www.w3.org/2000/svg">&b;</svg>'
)
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)
HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
TEXT_WITH_SCRIPT = b"Quarterly figures\n\n<script>fetch('/api/users')</script>\n"
