"""Removing secrets from agent output before it leaves the session (status, events, CLI).

Log tails end up in `status.logs.tail`, readable by anyone who may `get agentsessions` — a much
wider audience than the Secrets the agent was given. Agents print their environment, echo
request headers, dump configs. So every provider redacts twice over:

* values the provider knows to be secret (the values of the Secrets the session uses), in the
  forms they leak in: as written; split by whitespace or line breaks (a wrapped error message, a
  PEM block, a value printed in chunks); base64-encoded, standard or URL-safe, on their own or
  inside a longer encoding (`Authorization: Basic base64(user:secret)`, a dumped config);
* patterns that look like credentials whatever their source (bearer tokens, well-known key
  formats, JWTs, `password=…`-style assignments, passwords in URLs).

The same redactor guards every text the operator writes where more people can read it than the
Secrets: the log tail, condition messages and Events (a platform's error text may echo what it
was sent).

Redaction runs on the whole text *before* it is cut to size: a cut could otherwise split a secret
so that neither half matches any more, and the surviving half would be published.
"""

from __future__ import annotations

import base64
import bisect
import re
import string
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

REDACTED: Final = "[REDACTED]"

MIN_SECRET_LENGTH: Final = 4
"""Shorter secret values are not redacted by value: replacing every `1`, `yes` or `dev` in a log
would destroy it, and a value that short protects nothing anyway."""

MIN_SPLIT_LENGTH: Final = 8
"""Values with at least this many non-blank characters are also found split by whitespace. A
shorter one is only found as written: `test` would otherwise match `the best estimate`."""

MIN_ENCODED_LENGTH: Final = 8
"""Base64 forms are searched for when their stable part (see `_base64_cores`) is at least this
long: shorter runs of base64 letters occur by chance in ids and hashes."""

_BASE64_LETTERS: Final = frozenset(string.ascii_letters + string.digits + "+/-_")
"""The standard and the URL-safe alphabet together (`=` pads the end)."""
_TO_URL_SAFE: Final = str.maketrans("+/", "-_")

_KEY_WORDS: Final = (
    r"password|passwd|passphrase|secret|token|api[_-]?key|apikey|access[_-]?key|"
    r"private[_-]?key|client[_-]?secret|credentials?|auth[_-]?token"
)

_TOKEN_CHARS: Final = r"[A-Za-z0-9\-._~+/]"


def _bearer(match: re.Match[str]) -> str:
    """`Bearer <token>` outside an Authorization header: redact what looks like a token (a digit
    or a symbol in it), not the next word of a sentence ("uses bearer authentication")."""
    token = match.group(3)
    if len(token) >= 8 and any(ch.isdigit() or ch in "-._~+/=" for ch in token):
        return f"{match.group(1)}{match.group(2)}{REDACTED}"
    return match.group(0)


def _assignment(match: re.Match[str]) -> str:
    """`key=value` → `key=[REDACTED]`, keeping the value's quotes (a JSON line stays JSON)."""
    key, value = match.group(1), match.group(2)
    quote = value[0] if value[0] in "\"'" else ""
    return f"{key}{quote}{REDACTED}{quote}"


_PATTERNS: Final[tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...]] = (
    # `Authorization: Bearer <token>`, `"authorization": "Basic <b64>"`: whatever the scheme,
    # the credential goes; the scheme stays (it tells a reader what was there).
    (
        re.compile(
            r"""(?i)(\bauthorization["']?\s*[:=]\s*["']?)((?:bearer|basic|token|digest)\s+)?[^\s"',;]+"""
        ),
        rf"\1\2{REDACTED}",
    ),
    # `Bearer <token>` anywhere else (curl command lines, error messages).
    (re.compile(rf"\b(bearer)(\s+)({_TOKEN_CHARS}+=*)", re.IGNORECASE), _bearer),
    # Passwords in URLs: scheme://user:password@host
    (re.compile(r"(\b[a-z][a-z0-9+.-]{0,31}://[^\s:/@]+:)[^\s@/]+(@)", re.IGNORECASE), rf"\1{REDACTED}\2"),
    # JSON Web Tokens (header.payload.signature; a header always starts with `{"` → `eyJ`).
    (re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), REDACTED),
    # OpenAI / Anthropic style keys (`sk-…`, `sk-ant-…`, `sk-proj-…`).
    (re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"), REDACTED),
    # GitHub tokens (classic and fine-grained).
    (re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"), REDACTED),
    # Slack tokens.
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), REDACTED),
    # AWS access key ids (long-term AKIA…, temporary ASIA…).
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), REDACTED),
    # Google API keys.
    (re.compile(r"\bAIza[0-9A-Za-z_-]{35}"), REDACTED),
    # Assignments: `password=…`, `GITHUB_TOKEN: …`, `"api_key": "…"`. The key must END in a key
    # word, so `input_tokens: 12` and `token_count=3` are left alone. The value may be quoted.
    # A key is taken whole (nothing of a name before it), and the operator's own wire paths
    # (`spec.podTemplate.automountServiceAccountToken: not allowed …`) are no assignments: what
    # follows them is the operator's explanation, and a secret value in it goes by value anyway.
    (
        re.compile(
            rf"""(?ix)
            ((?<![\w.-])(?!(?:spec|status|metadata)\.)
             [\w.-]{{0,64}}(?:{_KEY_WORDS})["']?[ \t]*[:=][ \t]*)   # key, optional closing quote, separator
            ("[^"\n]*"|'[^'\n]*'|[^\s,;&"'}}]+)             # value: quoted, or up to a delimiter
            """
        ),
        _assignment,
    ),
)


def redact(text: str, secret_values: Iterable[str] = ()) -> str:
    """`text` with every secret value and every credential-like string replaced by `[REDACTED]`.

    Secret values go first, all at once: every place where one occurs (as written, split by
    whitespace, or base64-encoded, see the module docstring) is found in the original text, the
    places are merged and each is replaced whole, so a secret containing another is removed whole
    and a replacement is never scanned again (a short secret cannot mangle the marker left by a
    longer one). A multi-line value (a PEM key) is also redacted line by line, so that a log tail
    starting in its middle does not publish its last lines. A base64 form takes the whole run of
    base64 letters around it: the bytes next to the secret in that encoding go with it. Patterns
    follow. Idempotent: redacting twice changes nothing more.
    """
    needles = _needles(secret_values)
    if needles:
        text = _redact_values(text, needles)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


@dataclass(frozen=True)
class _Needle:
    """One form of a secret value to look for."""

    text: str
    blanks_between: bool
    """Also found with whitespace (blanks, line breaks) between its characters."""
    encoded: bool = False
    """A base64 form: the match grows to the run of base64 letters it is part of."""


def _needles(secret_values: Iterable[str]) -> list[_Needle]:
    values = _exact_values(secret_values)
    needles: dict[tuple[str, bool], _Needle] = {}
    for value in values:
        compact = "".join(value.split())
        if len(compact) >= MIN_SPLIT_LENGTH:
            needles.setdefault((compact, True), _Needle(compact, True))
        if compact != value or len(compact) < MIN_SPLIT_LENGTH:  # as written, blanks around it included
            needles.setdefault((value, False), _Needle(value, False))
        for core in _base64_cores(value.encode("utf-8", errors="replace")):
            if len(core) >= MIN_ENCODED_LENGTH:
                needles.setdefault((core, True), _Needle(core, True, encoded=True))
    return [n for n in needles.values() if n.text not in REDACTED]


def _base64_cores(data: bytes) -> Iterator[str]:
    """What every base64 encoding containing `data` contains, whatever comes before it.

    Base64 turns 3 bytes into 4 letters, so `data` encodes differently depending on where it
    starts in the encoded stream (3 alignments). For each alignment, the letters made only of
    `data`'s bits are fixed; the first and last letter may mix in neighbouring bytes and are left
    out. Each core is given in the standard and the URL-safe alphabet."""
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + data).decode("ascii")
        first = -(-shift * 8 // 6)  # the first letter made of data's bits only
        end = (shift + len(data)) * 8 // 6  # the letter after the last one made of data's bits only
        core = encoded[first:end]
        yield core
        yield core.translate(_TO_URL_SAFE)


def _redact_values(text: str, needles: list[_Needle]) -> str:
    spans: list[tuple[int, int]] = []
    for needle in needles:
        if needle.blanks_between:
            continue
        at = text.find(needle.text)
        while at != -1:
            spans.append((at, at + len(needle.text)))
            at = text.find(needle.text, at + 1)
    split = [needle for needle in needles if needle.blanks_between]
    if split:
        spans += _split_spans(text, split)
    if not spans:
        return text
    markers = [(m.start(), m.end()) for m in re.finditer(re.escape(REDACTED), text)]
    spans = [s for s in spans if not any(m0 <= s[0] and s[1] <= m1 for m0, m1 in markers)]
    out: list[str] = []
    position = 0
    for begin, end in _merged(spans):
        out += [text[position:begin], REDACTED]
        position = end
    out.append(text[position:])
    return "".join(out)


def _split_spans(text: str, needles: list[_Needle]) -> list[tuple[int, int]]:
    """Where `needles` occur in `text` with any whitespace between their characters: they are
    searched in the text without its whitespace, and each place mapped back."""
    runs = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    compact = "".join(text[begin:end] for begin, end in runs)
    starts: list[int] = []
    length = 0
    for begin, end in runs:
        starts.append(length)
        length += end - begin

    def original(index: int) -> int:
        run = bisect.bisect_right(starts, index) - 1
        return runs[run][0] + index - starts[run]

    spans: list[tuple[int, int]] = []
    for needle in needles:
        at = compact.find(needle.text)
        while at != -1:
            begin, end = original(at), original(at + len(needle.text) - 1) + 1
            if needle.encoded:
                while begin > 0 and text[begin - 1] in _BASE64_LETTERS:
                    begin -= 1
                while end < len(text) and (text[end] in _BASE64_LETTERS or text[end] == "="):
                    end += 1
            spans.append((begin, end))
            at = compact.find(needle.text, at + 1)
    return spans


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping spans as one, in order (spans that only touch stay apart)."""
    merged: list[tuple[int, int]] = []
    for begin, end in sorted(spans):
        if merged and begin < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((begin, end))
    return merged


MAX_SECRET_REFERENCES: Final = 32
"""At most this many Secrets of one configuration are read for redaction."""

_REFERENCE_KEYS: Final = {"secretKeyRef": "key", "credentialsSecretRef": "key", "secretRef": None}


def secret_references(config: Any, *, max_depth: int = 32) -> list[tuple[str, str | None]]:
    """The Secrets a configuration references, as `(name, key)` (key None: every key), wherever
    they are: `secretKeyRef` and `secretRef` (env, envFrom), `credentialsSecretRef` (http), and
    `secret.secretName` (volumes). Their values are what `redact` is given as known secrets for
    the session's condition messages and Events. At most `MAX_SECRET_REFERENCES`, in order."""
    found: dict[tuple[str, str | None], None] = {}

    def walk(value: Any, depth: int) -> None:
        if depth > max_depth or len(found) >= MAX_SECRET_REFERENCES:
            return
        if isinstance(value, Mapping):
            for field_name, item in value.items():
                if isinstance(item, Mapping) and isinstance(item.get("name"), str) and field_name in _REFERENCE_KEYS:
                    key_field = _REFERENCE_KEYS[field_name]
                    key = item.get(key_field) if key_field else None
                    found.setdefault((item["name"], key if isinstance(key, str) else None), None)
                elif field_name == "secret" and isinstance(item, Mapping) and isinstance(item.get("secretName"), str):
                    found.setdefault((item["secretName"], None), None)
                walk(item, depth + 1)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item, depth + 1)

    walk(config, 0)
    return list(found)[:MAX_SECRET_REFERENCES]


def _exact_values(secret_values: Iterable[str]) -> list[str]:
    values: set[str] = set()
    for value in secret_values:
        if not isinstance(value, str):
            continue
        candidates = [value, value.strip()]
        if "\n" in value:
            candidates += [line.strip() for line in value.splitlines()]
        values.update(candidate for candidate in candidates if len(candidate) >= MIN_SECRET_LENGTH)
    values.discard(REDACTED)
    return sorted(values, key=len, reverse=True)
