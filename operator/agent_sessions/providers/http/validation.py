"""What the http provider needs from a resolved configuration, checked before any request.

Decisions:

* `spec.http.url` is required and must be an absolute http(s) URL without query or fragment
  (paths are appended to it).
* `spec.http.credentialsSecretRef` is **optional**: a platform on a private network, or the
  reference server in development, may need no token. When it is given, it must name a Secret.
* `spec.agent.image` is not required: a platform chooses how to run the agent and may ignore it.
* `env[].valueFrom.secretKeyRef`/`configMapKeyRef` and `envFrom` are supported: the platform
  cannot read this cluster's objects, so the provider reads them and sends the values (the
  agent's API keys usually live in such Secrets). `fieldRef` and `resourceFieldRef` describe a
  pod, and there is none: they are refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from agent_sessions.api import constants as c

SUPPORTED_VALUE_FROM = ("secretKeyRef", "configMapKeyRef")


def http_problems(config: Mapping[str, Any]) -> list[str]:
    """Every reason the http provider cannot run `config` (empty when it can)."""
    http = _mapping(config.get("http"))
    problems: list[str] = []
    url = http.get("url")
    if not url:
        problems.append("spec.http.url: required by the http provider (the platform's base URL)")
    elif not isinstance(url, str) or not _is_base_url(url):
        problems.append(f"spec.http.url: {url!r} is not an absolute http(s) URL without query or fragment")
    ref = http.get("credentialsSecretRef")
    if ref is not None and not (isinstance(ref, Mapping) and ref.get("name")):
        problems.append("spec.http.credentialsSecretRef.name: required when credentialsSecretRef is set")
    agent = _mapping(config.get("agent"))
    for entry in agent.get("env") or ():
        source = entry.get("valueFrom") if isinstance(entry, Mapping) else None
        if not isinstance(source, Mapping):
            continue
        unsupported = sorted(key for key, value in source.items() if value and key not in SUPPORTED_VALUE_FROM)
        if unsupported:
            problems.append(
                f"spec.agent.env[{entry.get('name')}].valueFrom.{unsupported[0]}: not supported by the http"
                f" provider: there is no pod to read it from (only {' and '.join(SUPPORTED_VALUE_FROM)})"
            )
    protocol = agent.get("protocol")
    if protocol is not None and protocol not in (c.PROTOCOL_ACP, c.PROTOCOL_STDIO_LINES):
        problems.append(f"spec.agent.protocol: unknown protocol {protocol!r} (acp or stdio-lines)")
    return problems


def _is_base_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.query and not parts.fragment


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
