"""Which URLs the http provider may talk to: the platforms the operator's configuration allows. Pure.

Why: the operator may read any Secret of a session's namespace, and the http provider sends the
session's bearer token and the agent's environment (Secret values included) to `spec.http.url`.
If the session author chose that URL, anyone who may create an AgentSession could have any
Secret of the namespace sent to a server of their own (DESIGN §11). So the platforms are the
platform team's: `agent-sessions run --http-platform URL` (chart value `httpProvider.platforms`)
lists base URLs, and a session's URL must lie under one of them. None listed, none allowed.

Matching is done on parsed parts, never on strings, so `https://platform.example.com.evil.io`,
`https://platform.example.com@evil.io` and `https://platform.example.com:8443` are not
`https://platform.example.com`:

* scheme and host are compared case-insensitively, the port exactly (the scheme's default when
  absent);
* the path must be the base's path or continue it at a `/` (`/v1` allows `/v1/team`, not `/v10`);
* userinfo (`user:pass@`), `.`/`..` segments (also percent-encoded: the HTTP client would
  resolve them and leave the prefix), backslashes, whitespace and control characters are refused
  outright, in the allowlist and in the URLs checked against it.

The same parts decide which runtime `endpoint` a platform may report (SSRF: the operator and the
gateway fetch it): on its platform's own origin, under an allowed platform, or under one of the
operator's allowed endpoint bases (`--http-endpoint`, chart `httpProvider.endpoints`), which may
name any port with `:*` — for platforms whose sessions each listen on a port of their own, as the
reference server's do (`http://127.0.0.1:*`). Anything else is dropped, never fetched.

A SessionTemplate may add platforms and endpoint bases for the sessions that reference it
(`spec.policy.httpPlatforms`/`httpEndpoints`, DESIGN §11: template authors are the platform team):
`raised_by` widens the operator's list for one session's chain, each added base remembered with
its template for messages. A session never adds anything (`config.raises`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from agent_sessions.config.raises import Raise, TemplateRaises

RUN_FLAG = "--http-platform"
"""The `agent-sessions run` flag that allows a platform (repeatable)."""
CHART_VALUE = "httpProvider.platforms"
"""The Helm value that becomes `--http-platform` arguments."""
ENDPOINT_FLAG = "--http-endpoint"
"""The `agent-sessions run` flag that allows runtime endpoints off a platform's origin (repeatable)."""
ANY_PORT = ":*"
DEFAULT_PORTS = {"http": 80, "https": 443}
TEMPLATE_HINT = "or a SessionTemplate's spec.policy.httpPlatforms"
"""How a refused platform could be allowed besides the operator's flag (said of every refusal)."""
MAX_SHOWN = 200
"""The most of a URL a message repeats (a platform's answer is bounded before it reaches status)."""


@dataclass(frozen=True)
class BaseURL:
    """A URL reduced to what access is decided on."""

    scheme: str
    host: str
    port: int | None
    """None: any port (an endpoint base written with `:*`)."""
    path: str
    """Without a trailing `/` (`""` for the root)."""

    @property
    def origin(self) -> tuple[str, str, int | None]:
        return self.scheme, self.host, self.port

    def covers(self, other: BaseURL) -> bool:
        """`other` is on this base's origin and under its path (at a `/` boundary)."""
        if (other.scheme, other.host) != (self.scheme, self.host) or self.port not in (None, other.port):
            return False
        return not self.path or other.path == self.path or other.path.startswith(self.path + "/")

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = ANY_PORT if self.port is None else "" if DEFAULT_PORTS[self.scheme] == self.port else f":{self.port}"
        return f"{self.scheme}://{host}{port}{self.path}"


def parse_url(url: object, *, any_port: bool = False) -> BaseURL:
    """The parts of an absolute http(s) URL; ValueError saying why it cannot be trusted.
    With `any_port`, a port written `:*` stands for every port (port None)."""
    if not isinstance(url, str) or not url:
        raise ValueError("is not a URL")
    if any_port:
        scheme, sep, rest = url.partition("://")
        netloc, slash, path = rest.partition("/")
        if sep and netloc.endswith(ANY_PORT):
            base = parse_url(f"{scheme}://{netloc[:-len(ANY_PORT)]}{slash}{path}")
            return BaseURL(base.scheme, base.host, None, base.path)
    if any(ch <= " " or ch == "\x7f" for ch in url) or "\\" in url:
        raise ValueError("contains whitespace, control characters or a backslash")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise ValueError(f"cannot be parsed ({error})") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError("is not an http or https URL")
    if "@" in parts.netloc:
        raise ValueError("carries userinfo (user@host)")
    if not parts.hostname:
        raise ValueError("has no host")
    path = parts.path
    segments = unquote(path).split("/")
    if any(segment in (".", "..") for segment in segments):
        raise ValueError("has a '.' or '..' path segment")
    return BaseURL(scheme, parts.hostname.lower(), port if port is not None else DEFAULT_PORTS[scheme],
                   path.rstrip("/"))


def shown(url: object) -> str:
    """`url` as a message quotes it: repr (control characters escaped), bounded."""
    text = repr(url)
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "…'"


class PlatformAllowlist:
    """The platforms an operator may send sessions to (base URLs, from its configuration), and,
    once `raised_by` a session's templates, the ones they add."""

    def __init__(self, platforms: Iterable[str] = (), endpoints: Iterable[str] = ()) -> None:
        """ValueError naming the flag and the entry when an entry is not a usable base URL."""
        self.bases = _bases(RUN_FLAG, platforms)
        """Where sessions may be sent (the operator's own list)."""
        self.endpoint_bases = _bases(ENDPOINT_FLAG, endpoints, any_port=True)
        """Where, besides a platform's own origin and the allowed platforms, runtime endpoints may be."""
        self.raised_bases: tuple[tuple[BaseURL, str], ...] = ()
        """Platforms the session's templates add, each with its template (`raised_by`)."""
        self.raised_endpoint_bases: tuple[tuple[BaseURL, str], ...] = ()
        self.problems: tuple[str, ...] = ()
        """Entries of the templates' policies that are no usable base URL (they allow nothing)."""

    def raised_by(self, raises: TemplateRaises) -> PlatformAllowlist:
        """This allowlist with the platforms and endpoint bases a session's templates add."""
        if not raises.http_platforms and not raises.http_endpoints:
            return self
        widened = PlatformAllowlist()
        widened.bases, widened.endpoint_bases = self.bases, self.endpoint_bases
        platforms, problems = _raised_bases("httpPlatforms", raises.http_platforms)
        endpoints, endpoint_problems = _raised_bases("httpEndpoints", raises.http_endpoints, any_port=True)
        widened.raised_bases, widened.raised_endpoint_bases = platforms, endpoints
        widened.problems = (*problems, *endpoint_problems)
        return widened

    def allows(self, url: object) -> bool:
        return self.url_problem(url) is None

    def url_problem(self, url: object, *, field: str = "spec.http.url") -> str | None:
        """Why the operator may not send a session to `url` (None when it may)."""
        try:
            target = parse_url(url)
        except ValueError as error:
            return f"{field}: {shown(url)} {error}: the operator sends sessions only to allowed platforms"
        if any(base.covers(target) for base in self._platform_bases()):
            return None
        allowed = ", ".join(str(base) for base in self.bases)
        allowed = f"this operator allows {allowed}" if allowed else "this operator allows none"
        origins: dict[str, list[str]] = {}
        for base, origin in self.raised_bases:
            origins.setdefault(origin, []).append(str(base))
        allowed += "".join(f"; {origin} allows {', '.join(bases)}" for origin, bases in origins.items())
        return (
            f"{field}: {shown(url)} is not an allowed http platform ({allowed})"
            ": sessions and their Secrets are sent only to platforms the platform team allows, with"
            f" `agent-sessions run {RUN_FLAG} URL` (chart value {CHART_VALUE}) {TEMPLATE_HINT}"
        )

    def endpoint_problem(self, endpoint: object, platform_url: str) -> str | None:
        """Why the runtime `endpoint` a platform reported may not be used (None when it may):
        it must be on the origin of `platform_url` (the platform's own) or under an allowed base."""
        try:
            target = parse_url(endpoint)
            if target.origin == parse_url(platform_url).origin:
                return None
            bases = (*self._platform_bases(), *self.endpoint_bases, *(base for base, _ in self.raised_endpoint_bases))
            if any(base.covers(target) for base in bases):
                return None
        except ValueError:
            pass
        return (
            f"endpoint {shown(endpoint)} reported by the platform is not on an allowed origin"
            f" (the platform's own, an allowed platform or an allowed endpoint base, {ENDPOINT_FLAG}"
            " or a SessionTemplate's spec.policy.httpEndpoints): it is not used"
        )

    def _platform_bases(self) -> tuple[BaseURL, ...]:
        return (*self.bases, *(base for base, _ in self.raised_bases))


def _raised_bases(key: str, raised: Iterable[Raise], *,
                  any_port: bool = False) -> tuple[tuple[tuple[BaseURL, str], ...], list[str]]:
    bases: list[tuple[BaseURL, str]] = []
    problems: list[str] = []
    for item in raised:
        try:
            base = parse_url(item.value, any_port=any_port)
            if "?" in item.value or "#" in item.value:
                raise ValueError("has a query or fragment")
        except ValueError as error:
            problems.append(f"spec.policy.{key} of {item.origin}: {shown(item.value)} {error}: it allows nothing")
            continue
        bases.append((base, item.origin))
    return tuple(bases), problems


def _bases(flag: str, urls: Iterable[str], *, any_port: bool = False) -> tuple[BaseURL, ...]:
    bases: list[BaseURL] = []
    for url in urls:
        try:
            base = parse_url(url, any_port=any_port)
        except ValueError as error:
            raise ValueError(f"{flag} {shown(url)}: {error}") from None
        if "?" in url or "#" in url:
            raise ValueError(f"{flag} {shown(url)}: a base URL has no query or fragment")
        bases.append(base)
    return tuple(dict.fromkeys(bases))
