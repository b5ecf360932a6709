"""Removing secrets from agent output before it leaves the session (status, events, CLI).

Log tails end up in `status.logs.tail`, readable by anyone who may `get agentsessions` — a much
wider audience than the Secrets the agent was given. Agents print their environment, echo
request headers, dump configs. So every provider redacts twice over:

* exact values the provider knows to be secret (the values of the Secrets the session uses);
* patterns that look like credentials whatever their source (bearer tokens, well-known key
  formats, JWTs, `password=…`-style assignments, passwords in URLs).

Redaction runs on the whole text *before* it is cut to size: a cut could otherwise split a secret
so that neither half matches any more, and the surviving half would be published.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Final

REDACTED: Final = "[REDACTED]"

MIN_SECRET_LENGTH: Final = 4
"""Shorter secret values are not redacted by value: replacing every `1`, `yes` or `dev` in a log
would destroy it, and a value that short protects nothing anyway."""

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
    (
        re.compile(
            rf"""(?ix)
            (\b[\w.-]{{0,64}}(?:{_KEY_WORDS})["']?[ \t]*[:=][ \t]*)   # key, optional closing quote, separator
            ("[^"\n]*"|'[^'\n]*'|[^\s,;&"'}}]+)             # value: quoted, or up to a delimiter
            """
        ),
        _assignment,
    ),
)


def redact(text: str, secret_values: Iterable[str] = ()) -> str:
    """`text` with every secret value and every credential-like string replaced by `[REDACTED]`.

    Exact values go first, longest first (a secret containing another is removed whole). A
    multi-line value (a PEM key) is also redacted line by line, so that a log tail starting in its
    middle does not publish its last lines. Idempotent: redacting twice changes nothing more.
    """
    values = _exact_values(secret_values)
    if values:
        # One pass over an alternation (longest first): a replacement is never scanned again, so
        # a short secret cannot mangle the marker left by a longer one.
        text = re.sub("|".join(map(re.escape, values)), REDACTED, text)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


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
