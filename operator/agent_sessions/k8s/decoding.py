"""Decoding the API server's JSON, whatever a session author nested in it.

The API server accepts 10,000 levels of nesting inside a free-form field (`spec.meta`, volume
sources); Python's decoder stops near 1,000 with `RecursionError`. Every list and watch of
sessions carries such a body, and a response to a write returns it: one session must not make the
operator blind to all of them (issue 10's bounded input, issue 11's informers).
"""

from __future__ import annotations

import json
import logging
from typing import Any

logger = logging.getLogger(__name__)

MAX_DECODED_DEPTH = 100
"""Nesting kept when an object is too deep for Python's decoder (see `decode`)."""


def decode(data: bytes) -> Any:
    """JSON `data`; a value nested deeper than Python's decoder can go (the API server accepts
    10,000 levels inside a free-form field such as `spec.meta`) is decoded with everything below
    `MAX_DECODED_DEPTH` levels replaced by null, rather than failing the whole list or watch: one
    session author's object must not stop the operator from seeing every other session. The
    reconcile then finds the field too deep and says so in the session's status."""
    try:
        return json.loads(data)
    except RecursionError:
        logger.warning("an object nested too deep to decode was cut at %d levels", MAX_DECODED_DEPTH)
        return json.loads(_cut_deeper_than(data, MAX_DECODED_DEPTH))


def _cut_deeper_than(data: bytes, limit: int) -> bytes:
    """`data` with every array or object that starts deeper than `limit` levels replaced by null.
    A plain scan that knows strings (and their escapes) from structure: slow, and only for what
    the decoder refused."""
    out = bytearray()
    depth, index, length = 0, 0, len(data)
    in_string = False
    while index < length:
        byte = data[index]
        if in_string:
            if byte == 0x5C:  # a backslash: the next byte is escaped
                out += data[index:index + 2]
                index += 2
                continue
            in_string = byte != 0x22
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            if depth >= limit:
                index = _end_of_value(data, index)
                out += b"null"
                continue
            depth += 1
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
        out.append(byte)
        index += 1
    return bytes(out)


def _end_of_value(data: bytes, index: int) -> int:
    """The index just past the array or object that starts at `index`."""
    depth, in_string, length = 0, False, len(data)
    while index < length:
        byte = data[index]
        if in_string:
            if byte == 0x5C:
                index += 2
                continue
            in_string = byte != 0x22
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
        elif byte in (0x5D, 0x7D):
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    return length
