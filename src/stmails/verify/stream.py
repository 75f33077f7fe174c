"""Streams one address per input line to one JSON record per output line, in order."""

from __future__ import annotations

from typing import BinaryIO

from stmails.verify.offline import OfflineVerifier

__all__ = ["BLOCK_SIZE", "offline_jsonl_stream"]

BLOCK_SIZE = 1 << 20


def offline_jsonl_stream(source: BinaryIO, sink: BinaryIO, verifier: OfflineVerifier) -> int:
    """Reads ``source`` to its end and writes one record per line to ``sink``; returns the count.

    Input is UTF-8; bytes that are not are kept as lone surrogates (``surrogateescape``) and so
    fail the syntax stage instead of stopping the stream. A line ends at LF, and a CR before
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
    text = data.decode("utf-8", "surrogateescape")
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        if text.endswith("\r"):
            text = text[:-1]
    lines = text.split("\n")
    records = verifier.jsonl(lines)
    sink.write(("\n".join(records) + "\n").encode("ascii"))
    return len(records)
