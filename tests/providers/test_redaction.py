"""Secrets never leave a session through its log tail; the tail fits the status."""

from __future__ import annotations

import base64

import pytest

from agent_sessions.providers import REDACTED, LogTail, bounded_log, redact, tail
from agent_sessions.providers.redaction import MAX_SECRET_REFERENCES, secret_references

R = REDACTED
JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"


@pytest.mark.parametrize(
    ("text", "secrets", "expected"),
    [
        pytest.param("connecting with s3cr3t-value now", ["s3cr3t-value"], f"connecting with {R} now",
                     id="exact-secret-value"),
        pytest.param("a=longsecret b=long", ["long", "longsecret"], f"a={R} b={R}",
                     id="longest-value-first"),
        pytest.param("pin 123 ok", ["123"], "pin 123 ok", id="too-short-to-redact-by-value"),
        pytest.param("-----BEGIN KEY-----\nMIIEvQIBADANBgkqh\n-----END KEY-----\nnext",
                     ["-----BEGIN KEY-----\nMIIEvQIBADANBgkqh\n-----END KEY-----\n"], f"{R}next",
                     id="multi-line-secret-whole"),
        pytest.param("MIIEvQIBADANBgkqh\n-----END KEY-----\n",
                     ["-----BEGIN KEY-----\nMIIEvQIBADANBgkqh\n-----END KEY-----"],
                     f"{R}\n{R}\n", id="multi-line-secret-line-by-line"),
        pytest.param("Authorization: Bearer abc.DEF_123-xyz", [], f"Authorization: Bearer {R}", id="bearer-header"),
        pytest.param('curl -H "authorization: Basic dXNlcjpwYXNzd29yZA=="', [],
                     f'curl -H "authorization: Basic {R}"', id="basic-header"),
        pytest.param("retrying with bearer 0123456789abcdef", [], f"retrying with bearer {R}", id="bearer-token"),
        pytest.param("server supports bearer authentication", [], "server supports bearer authentication",
                     id="bearer-in-prose-is-kept"),
        pytest.param("key sk-ant-api03-AbCdEf0123456789xyz used", [], f"key {R} used", id="anthropic-key"),
        pytest.param("OPENAI sk-proj-abcdefghijklmnop1234", [], f"OPENAI {R}", id="openai-key"),
        pytest.param("ghp_abcdefghijklmnopqrstuvwxyz0123456789 pushed", [], f"{R} pushed", id="github-token"),
        pytest.param("slack xoxb-123456789012-abcdefABCDEF", [], f"slack {R}", id="slack-token"),
        pytest.param("aws AKIAIOSFODNN7EXAMPLE region", [], f"aws {R} region", id="aws-access-key-id"),
        pytest.param(f"token {JWT}.", [], f"token {R}.", id="jwt"),
        pytest.param("login password=hunter2 ok", [], f"login password={R} ok", id="password-assignment"),
        pytest.param("export GITHUB_TOKEN=abc123", [], f"export GITHUB_TOKEN={R}", id="env-token-assignment"),
        pytest.param('{"api_key": "k-123 456", "model": "opus"}', [], f'{{"api_key": "{R}", "model": "opus"}}',
                     id="json-api-key-keeps-quotes"),
        pytest.param("client_secret: 'abc def'", [], f"client_secret: '{R}'", id="yaml-quoted-secret"),
        pytest.param("db: postgres://agent:pa55w0rd@db:5432/app", [], f"db: postgres://agent:{R}@db:5432/app",
                     id="password-in-url"),
        pytest.param("usage input_tokens: 1234 output_tokens=56 token_count=3", [],
                     "usage input_tokens: 1234 output_tokens=56 token_count=3", id="token-counts-are-kept"),
        pytest.param("plain log line, nothing to hide", [], "plain log line, nothing to hide", id="plain-text-kept"),
    ],
)
def test_redact(text, secrets, expected):
    assert redact(text, secrets) == expected


@pytest.mark.parametrize(
    "text",
    ["Authorization: Bearer abc.DEF_123-xyz", "password=hunter2", f"{JWT}", "postgres://a:b@c", "value s3cr3t-x"],
)
def test_redaction_is_idempotent(text):
    once = redact(text, ["s3cr3t-x"])
    assert redact(once, ["s3cr3t-x"]) == once


def test_a_short_secret_cannot_mangle_the_marker_of_a_longer_one():
    assert redact("x=abcdefgh", ["abcdefgh", "DACT"]) == f"x={R}"


@pytest.mark.parametrize(
    ("text", "max_lines", "max_bytes", "expected", "truncated"),
    [
        pytest.param("", 50, 8192, "", False, id="empty"),
        pytest.param("a\nb\n", 50, 8192, "a\nb\n", False, id="fits"),
        pytest.param("a\nb\nc\n", 2, 8192, "b\nc\n", True, id="last-lines"),
        pytest.param("a\nb\nc", 2, 8192, "b\nc", True, id="no-final-newline"),
        pytest.param("a\nb\n", 2, 8192, "a\nb\n", False, id="final-newline-is-no-extra-line"),
        pytest.param("aaaa\nbbbb\ncccc\n", 50, 10, "bbbb\ncccc\n", True, id="byte-bound-on-line-boundary"),
        pytest.param("short\n" + "x" * 20, 50, 8, "x" * 8, True, id="huge-last-line-keeps-its-end"),
        pytest.param("é" * 10, 50, 5, "éé", True, id="never-splits-a-utf8-character"),
        pytest.param("ab€\n", 50, 4, "€\n", True, id="keeps-a-three-byte-character-that-fits"),
        pytest.param("ab€\n", 50, 3, "\n", True, id="drops-a-three-byte-character-cut-in-half"),
        pytest.param("a\n", 0, 8192, "", True, id="zero-lines"),
    ],
)
def test_tail(text, max_lines, max_bytes, expected, truncated):
    assert tail(text, max_lines, max_bytes) == (expected, truncated)
    assert len(tail(text, max_lines, max_bytes)[0].encode()) <= max_bytes


def test_tail_defaults_to_the_status_bounds():
    text = "".join(f"line {i}\n" for i in range(100))
    kept, truncated = tail(text)
    assert truncated
    assert kept.splitlines() == [f"line {i}" for i in range(50, 100)]


def test_redaction_happens_before_the_cut():
    """Cut first, and the tail would start with the second half of the secret, which no longer
    matches; redacted first, the marker is all that is left of it."""
    secret = "TOPSECRETVALUE"
    text = f"{secret}\nok\n"
    kept = bounded_log(text, [secret], max_lines=50, max_bytes=len("CRETVALUE\nok\n"))
    assert "CRETVALUE" not in kept
    assert kept == "ok\n" and kept.truncated


def test_a_token_cut_by_the_byte_bound_is_already_redacted():
    token = "ghp_" + "a" * 36
    kept = bounded_log(f"push with {token}", max_bytes=20)
    assert "aaaa" not in kept
    assert kept.endswith(REDACTED)


def test_bounded_log_is_a_string_with_a_truncated_flag():
    kept = bounded_log("a\nb\n", max_lines=1)
    assert isinstance(kept, str) and isinstance(kept, LogTail)
    assert (str(kept), kept.truncated) == ("b\n", True)
    assert bounded_log("a\n", truncated=True).truncated


# --- known values in the forms they leak in (issue 10) --------------------------------------

SECRET = "hunter2-Zq81-s3cr3t-value"


def b64(data: str, *, url_safe: bool = False) -> str:
    encode = base64.urlsafe_b64encode if url_safe else base64.b64encode
    return encode(data.encode()).decode()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(f"got {b64(SECRET)} back", f"got {R} back", id="base64"),
        pytest.param(f"got {b64(SECRET).rstrip('=')} back", f"got {R} back", id="base64-without-padding"),
        pytest.param(f"got {b64('~~' + SECRET + '??', url_safe=True)} back", f"got {R} back", id="base64-url-safe"),
        pytest.param(f"basic {b64('svc:' + SECRET)}.", f"basic {R}.", id="base64-inside-a-longer-encoding-1"),
        pytest.param(f"x {b64('ab' + SECRET + 'cdef')} y", f"x {R} y", id="base64-inside-a-longer-encoding-2"),
        pytest.param(f"x {b64('abc' + SECRET)} y", f"x {R} y", id="base64-inside-a-longer-encoding-0"),
        pytest.param(f"key {b64(SECRET)[:12]}\n{b64(SECRET)[12:]} end", f"key {R} end", id="base64-wrapped"),
        pytest.param("value hunter2-Zq8 1-s3cr3t -value end", f"value {R} end", id="split-by-spaces"),
        pytest.param("value hunter2-\nZq81-s3cr\n3t-value\nend", f"value {R}\nend", id="split-by-newlines"),
        pytest.param(f"value {SECRET[:10]}\t {SECRET[10:]}", f"value {R}", id="split-by-tabs"),
        pytest.param("the best estimate", "the best estimate", id="short-value-is-not-found-across-words"),
        pytest.param("a test here", f"a {R} here", id="short-value-still-found-as-written"),
        pytest.param("nothing of it: aHVudGVy", "nothing of it: aHVudGVy", id="a-prefix-of-the-encoding-is-not-it"),
    ],
)
def test_redact_finds_known_values_encoded_and_split(text, expected):
    assert redact(text, [SECRET, "test"]) == expected


def test_a_value_with_blanks_is_found_as_written_and_reflowed():
    passphrase = "correct horse battery staple"
    assert redact(f"pass: {passphrase}!", [passphrase]) == f"pass: {R}!"
    assert redact("pass: correct\nhorse battery\nstaple!", [passphrase]) == f"pass: {R}!"


def test_encoded_and_split_redaction_is_idempotent():
    text = f"{b64(SECRET)} and hunter2-Zq81 -s3cr3t-value and {b64('u:' + SECRET, url_safe=True)}"
    once = redact(text, [SECRET])
    assert SECRET not in once and "".join(once.split()).count(R) == 3
    assert redact(once, [SECRET]) == once


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        pytest.param({"agent": {"env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s1", "key": "k"}}},
                                        {"name": "B", "value": "plain"}]}},
                     [("s1", "k")], id="env-secret-key-ref"),
        pytest.param({"agent": {"envFrom": [{"secretRef": {"name": "s2"}}, {"configMapRef": {"name": "cm"}}]}},
                     [("s2", None)], id="env-from-secret"),
        pytest.param({"http": {"url": "https://p", "credentialsSecretRef": {"name": "tok", "key": "token"}}},
                     [("tok", "token")], id="http-credentials"),
        pytest.param({"podTemplate": {"volumes": [{"name": "v", "secret": {"secretName": "s3"}}]}},
                     [("s3", None)], id="secret-volume"),
        pytest.param({"agent": {"env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": 5}}}]}}, [],
                     id="malformed-references-are-skipped"),
    ],
)
def test_secret_references_are_found_anywhere_in_a_configuration(config, expected):
    assert secret_references(config) == expected


def test_secret_references_are_bounded():
    env = [{"name": f"V{i}", "valueFrom": {"secretKeyRef": {"name": f"s{i}", "key": "k"}}} for i in range(100)]
    assert len(secret_references({"agent": {"env": env}})) == MAX_SECRET_REFERENCES


def test_the_operators_own_field_paths_are_no_secret_assignments():
    # A status message about a field whose name ends in a key word keeps its explanation.
    message = "spec.podTemplate.automountServiceAccountToken: not allowed by the operator configuration"
    assert redact(message) == message
    assert redact("status.token: x") == "status.token: x"
    # Keys that merely contain such a path, or dotted keys of other kinds, still count.
    assert redact("db.password=hunter2") == "db.password=[REDACTED]"
    assert redact("x.spec.token=abc123") == "x.spec.token=[REDACTED]"
