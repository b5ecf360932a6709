"""Go-style durations (`30m`, `1h30m`, `1.5s`), as Kubernetes users write them.

The CRD checks the shape and the maximum (`api.base.MAX_DURATION`); the lifecycle needs the
number of seconds, and a malformed or absurd value must become a precise message rather than a
crash in the reconciler. Values reach this parser without the API server too (operator defaults,
objects stored before the CRD had a maximum), so it enforces the same maximum: no duration it
returns can overflow a `timedelta` or a `datetime` (`9999…9h` once did, every minute).
"""

from __future__ import annotations

import math
import re
from decimal import Context, Decimal
from typing import Final

from agent_sessions.api.base import MAX_DURATION, MAX_DURATION_SECONDS

_UNITS: Final = {
    "ns": Decimal("1e-9"),
    "us": Decimal("1e-6"),
    "µs": Decimal("1e-6"),  # U+00B5 MICRO SIGN
    "μs": Decimal("1e-6"),  # U+03BC GREEK SMALL LETTER MU
    "ms": Decimal("1e-3"),
    "s": Decimal(1),
    "m": Decimal(60),
    "h": Decimal(3600),
}
_EXACT: Final = Context(prec=60)
"""Sums exact to the nanosecond (so `8760h1ns` is over the maximum) at any magnitude."""
_TERM: Final = re.compile(r"([0-9]+\.?[0-9]*|\.[0-9]+)([^0-9.]*)")
_SHOWN: Final = 40
"""Longest value quoted in a message (the rest is elided): the message names the value, it does
not repeat a megabyte of it."""


def _shown(text: str) -> str:
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "…")


def parse_duration(text: str, maximum: float | None = MAX_DURATION_SECONDS) -> float:
    """Seconds in a Go duration string (`time.ParseDuration` syntax).

    A sequence of decimal numbers, each with an optional fraction and a unit (`ns`, `us`, `µs`,
    `ms`, `s`, `m`, `h`), optionally signed: `300ms`, `-1.5h`, `2h45m`. `0` needs no unit.
    Raises ValueError saying what is wrong, also when the magnitude exceeds `maximum` seconds
    (`8760h` unless told otherwise; None: no maximum, but never more than a finite float).
    """
    if not isinstance(text, str):
        raise ValueError(f"invalid duration {text!r:.{_SHOWN}}: must be a string such as \"30m\" or \"1h30m\"")
    body = text
    sign = 1.0
    if body[:1] in ("+", "-"):
        sign = -1.0 if body[0] == "-" else 1.0
        body = body[1:]
    if body == "0":
        return 0.0
    if not body:
        raise ValueError(f"invalid duration {_shown(text)}: empty")
    total = Decimal(0)
    position = 0
    while position < len(body):
        match = _TERM.match(body, position)
        if not match:
            raise ValueError(f"invalid duration {_shown(text)}: expected a number at {_shown(body[position:])}")
        number, unit = match.groups()
        if not unit:
            raise ValueError(f"invalid duration {_shown(text)}: missing unit after {_shown(number)} (use ns, us, ms, s, m or h)")
        if unit not in _UNITS:
            raise ValueError(f"invalid duration {_shown(text)}: unknown unit {_shown(unit)} (use ns, us, ms, s, m or h)")
        total = _EXACT.add(total, _EXACT.multiply(Decimal(number), _UNITS[unit]))
        position = match.end()
    if maximum is not None and total > Decimal(maximum):
        most = f"the maximum of {MAX_DURATION} (365 days)" if maximum == MAX_DURATION_SECONDS else f"{maximum:g}s"
        raise ValueError(f"invalid duration {_shown(text)}: longer than {most}")
    seconds = float(total)
    if not math.isfinite(seconds):
        raise ValueError(f"invalid duration {_shown(text)}: longer than any number of seconds")
    return sign * seconds
