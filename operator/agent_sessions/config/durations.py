"""Go-style durations (`30m`, `1h30m`, `1.5s`), as Kubernetes users write them.

The CRD's pattern only checks the shape; the lifecycle needs the number of seconds, and a
malformed value must become a precise message rather than a crash in the reconciler.
"""

from __future__ import annotations

import re
from typing import Final

_UNITS: Final = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,  # U+00B5 MICRO SIGN
    "μs": 1e-6,  # U+03BC GREEK SMALL LETTER MU
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_TERM: Final = re.compile(r"(\d+\.?\d*|\.\d+)([^\d.]*)")


def parse_duration(text: str) -> float:
    """Seconds in a Go duration string (`time.ParseDuration` syntax).

    A sequence of decimal numbers, each with an optional fraction and a unit (`ns`, `us`, `µs`,
    `ms`, `s`, `m`, `h`), optionally signed: `300ms`, `-1.5h`, `2h45m`. `0` needs no unit.
    Raises ValueError saying what is wrong.
    """
    if not isinstance(text, str):
        raise ValueError(f"invalid duration {text!r}: must be a string such as \"30m\" or \"1h30m\"")
    body = text
    sign = 1.0
    if body[:1] in ("+", "-"):
        sign = -1.0 if body[0] == "-" else 1.0
        body = body[1:]
    if body == "0":
        return 0.0
    if not body:
        raise ValueError(f"invalid duration {text!r}: empty")
    total = 0.0
    position = 0
    while position < len(body):
        match = _TERM.match(body, position)
        if not match:
            raise ValueError(f"invalid duration {text!r}: expected a number at {body[position:]!r}")
        number, unit = match.groups()
        if not unit:
            raise ValueError(f"invalid duration {text!r}: missing unit after {number!r} (use ns, us, ms, s, m or h)")
        if unit not in _UNITS:
            raise ValueError(f"invalid duration {text!r}: unknown unit {unit!r} (use ns, us, ms, s, m or h)")
        total += float(number) * _UNITS[unit]
        position = match.end()
    return sign * total
