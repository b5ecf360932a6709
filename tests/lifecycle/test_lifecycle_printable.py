"""Titles and messages are shown on terminals: no control character or escape sequence survives."""

from __future__ import annotations

import pytest

from agent_sessions.lifecycle.printable import printable_data, printable_line, printable_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("Fix \x1b[31mred\x1b[0m bug", "Fix red bug", id="csi-colours"),
        pytest.param("\x1b[2J\x1b[Hclear", "clear", id="csi-clear-screen"),
        pytest.param("a\x00b\x07c\x08d", "abcd", id="nul-bel-backspace"),
        pytest.param("\x1b]0;pwned\x07title", "title", id="osc-window-title-bel"),
        pytest.param("\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\", "link", id="osc-hyperlink-st"),
        pytest.param("\x1bP+q\x1b\\ok", "ok", id="dcs-string"),
        pytest.param("x\x9b2Jy", "xy", id="c1-csi"),
        pytest.param("x\x85y\x8dz", "xyz", id="c1-controls"),
        pytest.param("x\x9d0;title\x9cy", "xy", id="c1-osc-string"),
        pytest.param("del\x7f", "del", id="del"),
        pytest.param("\x1bc reset", " reset", id="two-byte-escape"),
        pytest.param("tail\x1b", "tail", id="lone-esc-at-the-end"),
        pytest.param("\x1b]0;unterminated", "", id="unterminated-osc-swallows-the-rest"),
        pytest.param("line1\r\nline2\tz", "line1\nline2\tz", id="keeps-tab-and-newline-drops-cr"),
        pytest.param("over\rwrite", "overwrite", id="lone-cr"),
        pytest.param("evil\u202egnp.exe", "evilgnp.exe", id="bidi-override"),
        pytest.param("ünïcødé ✓ 日本", "ünïcødé ✓ 日本", id="printable-unicode-kept"),
    ],
)
def test_printable_text(text, expected):
    assert printable_text(text) == expected


def test_printable_line_turns_line_breaks_and_tabs_into_spaces():
    assert printable_line("one\ntwo\tthree\r\nfour\u2028five") == "one two three four five"


def test_printable_data_cleans_every_string_keys_included():
    assert printable_data({"k\x1b[1m": ["v\x07", 3, {"n": "\x00x"}], "ok": None}) == {"k": ["v", 3, {"n": "x"}],
                                                                                        "ok": None}


def test_printable_is_idempotent():
    once = printable_text("\x1b[31mred\x1b[0m\x07 \x1b]0;t\x07x")
    assert printable_text(once) == once
