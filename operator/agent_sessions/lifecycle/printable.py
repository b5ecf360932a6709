"""Text that is safe to show on a terminal: control characters and escape sequences removed.

Titles come from the agent (ACP `session_info_update`) or the session's author, and end up in
`kubectl get` (the Title column), `agent-sessions list` and Events. A raw ESC there is a terminal
escape sequence run on the reader's terminal: it can rewrite the screen, set the window title,
hide text or, on some terminals, answer back. So before such text is written:

* ECMA-48 sequences go whole: CSI (`ESC [` … final byte, or the one-byte C1 CSI), OSC, DCS, SOS,
  PM and APC strings (up to their terminator, BEL or ST), and any other `ESC x` pair;
* C0 controls (NUL, BEL, BS, CR, …), DEL and C1 controls go;
* bidirectional overrides and isolates go (they make a terminal show text in another order
  than it is read);
* tab and line feed stay in multi-line text (messages) and become a space in a single line
  (titles, printer columns).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

_SEQUENCES: Final = re.compile(
    r"""
    (?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?           # CSI: parameters, intermediates, final
    | (?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f]).*?(?:\x07|\x1b\\|\x9c|$)  # OSC/DCS/SOS/PM/APC strings
    | \x1b[\x20-\x2f]*[\x30-\x7e]?                               # any other escape (nF, Fp, Fe, Fs)
    """,
    re.VERBOSE | re.DOTALL,
)
_CONTROLS: Final = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_LINE_BREAKS: Final = re.compile("[\t\n\u2028\u2029]")


def printable_text(text: str) -> str:
    """`text` without control characters or escape sequences; tabs and line feeds kept (a CR
    before a line feed is dropped, as is a lone CR, which would overwrite the line)."""
    return _CONTROLS.sub("", _SEQUENCES.sub("", text))


def printable_line(text: str) -> str:
    """`text` as one printable line: line breaks and tabs become spaces."""
    return _LINE_BREAKS.sub(" ", printable_text(text))


def printable_data(value: Any) -> Any:
    """Every string in a JSON-like value (keys included) made printable (`printable_text`)."""
    if isinstance(value, str):
        return printable_text(value)
    if isinstance(value, Mapping):
        return {printable_text(str(key)): printable_data(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [printable_data(item) for item in value]
    return value
