"""Streams one address per input line to one JSON record per output line, in order."""

from __future__ import annotations

import codecs
from typing import BinaryIO

from stmails.verify.offline import OfflineVerifier

__all__ = ["BLOCK_SIZE", "offline_jsonl_stream"]

BLOCK_SIZE = 1 << 20


def _lenient_utf8(error: UnicodeError) -> tuple[str, int]:
    """Decoding error handler: an encoded surrogate (what a producer writes for a lone
    surrogate with ``surrogatepass``) becomes that surrogate; any other bad byte is kept as a
    ``surrogateescape`` code point. Either way the line fails the syntax stage, and its
    ``address`` echoes what the producer meant where that is knowable."""
    assert isinstance(error, UnicodeDecodeError)
    data, start = error.object, error.start
    triple = data[start : start + 3]
    if (
        len(triple) == 3
        and triple[0] == 0xED
        and 0xA0 <= triple[1] <= 0xBF
        and 0x80 <= triple[2] <= 0xBF
    ):
        return triple.decode("utf-8", "surrogatepass"), start + 3
    return chr(0xDC00 + data[start]), start + 1


codecs.register_error("stmails-lenient-utf8", _lenient_utf8)


def offline_jsonl_stream(source: BinaryIO, sink: BinaryIO, verifier: OfflineVerifier) -> int:
    """Reads ``source`` to its end and writes one record per line to ``sink``; returns the count.

    Input is UTF-8; bytes that are not are kept as lone surrogates (see ``_lenient_utf8``) and
    so fail the syntax stage instead of stopping the stream. A line ends at LF, and a CR before
    the LF is part of the line ending; a final line without LF still counts. Work is done a
    block at a time, so memory stays bounded whatever the input size.
    """
    count = 0
    carry = b""
    while True:
        block = source.read(BLOCK_SIZE)
        if not block:
            break
        block = carry + block
        cut = block.rfind(b"\n")
        if cut < 0:
            carry = block
            # A single line longer than a few blocks is not an address; cap what we hold.
            if len(carry) > 4 * BLOCK_SIZE:
                carry = carry[: 4 * BLOCK_SIZE]
            continue
        carry = block[cut + 1 :]
        count += _write_lines(block[:cut], sink, verifier)
    if carry:
        count += _write_lines(carry, sink, verifier)
    return count


def _write_lines(data: bytes, sink: BinaryIO, verifier: OfflineVerifier) -> int:
    text = data.decode("utf-8", "stmails-lenient-utf8")
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        if text.endswith("\r"):
            text = text[:-1]
    lines = text.split("\n")
    records = verifier.jsonl(lines)
    sink.write(("\n".join(records) + "\n").encode("ascii"))
    return len(records)
