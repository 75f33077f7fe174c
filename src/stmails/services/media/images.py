"""Thumbnails of uploaded images, made with Pillow within a budget.

An image's header declares its size, and decoding costs memory in proportion to it: a few
kilobytes of PNG can declare billions of pixels (a decompression bomb). The declared size is
checked against MAX_PIXELS before any pixel is decoded, Pillow's own guard
(`Image.MAX_IMAGE_PIXELS`) is set to the same limit, and at most DECODERS images are decoded at a
time in a process. Only the first frame of an animated image is decoded.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from typing import BinaryIO

from PIL import Image, ImageOps

from stmails.services.media.checks import UploadRefused

# 40 megapixels: an 8000 x 5000 photograph. Decoded as RGBA it takes 160 MB.
MAX_PIXELS = 40_000_000
# listmonk's thumbnails are 250 pixels wide; ours fit in a 250 x 250 box, never enlarged.
THUMB_SIZE = 250
DECODERS = 2

Image.MAX_IMAGE_PIXELS = MAX_PIXELS
_decoding = threading.BoundedSemaphore(DECODERS)
# The modes each format can be written in; other modes are converted to the first one.
_SAVE_MODES = {
    "JPEG": ("RGB", "L", "CMYK"),
    "WEBP": ("RGBA", "RGB"),
    "PNG": ("RGBA", "RGB", "P", "L", "LA", "1", "I", "I;16"),
    "GIF": ("P", "L", "RGB", "RGBA"),
}


@dataclass(frozen=True, slots=True)
class Thumbnail:
    """A thumbnail (in the original's format) and the original's width and height."""

    data: bytes
    width: int
    height: int


def make_thumbnail(file: BinaryIO, image_format: str) -> Thumbnail:
    """The thumbnail of the image in `file`, which must be in `image_format` (Pillow's name);
    UploadRefused when the image declares more than MAX_PIXELS pixels or cannot be decoded.
    Leaves `file` at its start."""
    with _decoding:
        try:
            return _thumbnail(file, image_format)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise UploadRefused(_too_large_message()) from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise UploadRefused(f"the image cannot be decoded as {image_format} ({exc})") from None
        finally:
            file.seek(0)


def _too_large_message(width: int | None = None, height: int | None = None) -> str:
    size = f"{width} x {height} pixels" if width is not None else "the image's declared size"
    return f"{size} is more than the {MAX_PIXELS:,} pixels allowed"


def _thumbnail(file: BinaryIO, image_format: str) -> Thumbnail:
    file.seek(0)
    # Opening reads the header only; `formats` keeps Pillow from trying other decoders.
    with Image.open(file, formats=[image_format]) as image:
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise UploadRefused(_too_large_message(width, height))
        # JPEG can decode at 1/2, 1/4 or 1/8 scale: far less work for a thumbnail.
        image.draft("RGB", (THUMB_SIZE, THUMB_SIZE))
        image.load()
        # Phones store photos sideways and say so in EXIF; the thumbnail is shown upright.
        upright = ImageOps.exif_transpose(image)
        modes = _SAVE_MODES[image_format]
        if upright.mode not in modes:
            upright = upright.convert(modes[0])
        upright.thumbnail((THUMB_SIZE, THUMB_SIZE))
        out = io.BytesIO()
        upright.save(out, format=image_format)
    return Thumbnail(out.getvalue(), width, height)
