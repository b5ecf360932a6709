"""The agent's environment on the host, computed as a kubelet would compute a container's.

A pod gets its Secrets from the kubelet; a session without a kubelet (tmux, an external platform
over http) does not, so its provider reads the Secrets and ConfigMaps the configuration
references from the API (`get secrets`/`configmaps` in the session's namespace) when it starts
the session:

* `envFrom` first (each key of the ConfigMap or Secret, with the prefix; keys that are not valid
  variable names skipped), then `env` in order — later entries win, as in a pod;
* `value` literals, with `$(VAR)` expanded exactly as the kubelet does (`expand`): only variables
  defined before it are replaced, `$$` is a `$` (so `$$(VAR)` stays `$(VAR)`), an unknown or
  unterminated reference stays as written. Expansion is bounded *while it runs*: a value may not
  grow past `MAX_EXPANDED_VALUE_BYTES` nor the whole environment past `MAX_ENVIRONMENT_BYTES`
  (`InvalidConfiguration` naming `spec.agent.env[NAME]`). Without the bound, 130 KB of variables
  that each reference the previous one many times expanded to gigabytes;
* `valueFrom.secretKeyRef` / `configMapKeyRef`: the key's value. A missing object or key is
  skipped when `optional`, otherwise the start waits: `ProviderUnavailable` with the reason, so
  the session retries (as a pod waits in `CreateContainerConfigError`) until the Secret appears —
  with GitOps it routinely lands a little after the session. `fieldRef`/`resourceFieldRef` are
  rejected by validation.

The values read from Secrets are also what `logs()` redacts exactly (`secret_values`).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from .errors import InvalidConfiguration, ProviderUnavailable

SECRET: Final = "secret"
WAITING: Final = "; the session starts once it exists"
CONFIG_MAP: Final = "configmap"

MAX_EXPANDED_VALUE_BYTES: Final = 131072
"""Longest value of one variable after expansion (UTF-8 bytes): Linux's MAX_ARG_STRLEN, the most
one `NAME=value` string may hold when a process starts."""
MAX_ENVIRONMENT_BYTES: Final = 1048576
"""Most bytes of all variables together, after expansion (half of a usual 2 MiB ARG_MAX)."""

_ENV_NAME: Final = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


class ExpansionTooLarge(ValueError):
    """`$(VAR)` expansion would produce more than its bound; raised before it is produced."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"expands to more than {limit} bytes")
        self.limit = limit


class ReadForbidden(ProviderUnavailable):
    """The operator may not read the object (RBAC). Transient from the session's point of view:
    it is fixed by the operator's installer, not by the session's author."""


class ObjectReader(Protocol):
    """Reads Secrets and ConfigMaps as JSON dicts; None when the object does not exist.
    Raises `ReadForbidden` when not allowed, `ProviderUnavailable` when the API cannot be asked."""

    async def read(self, kind: str, namespace: str, name: str) -> Mapping[str, Any] | None: ...


@dataclass(frozen=True)
class AgentEnv:
    """The agent's variables from its configuration, and which values came from Secrets."""

    values: dict[str, str]
    secret_values: tuple[str, ...] = ()


async def resolve_env(agent: Mapping[str, Any], namespace: str, reader: ObjectReader | None) -> AgentEnv:
    """The variables `agent` (the resolved `agent` block) defines, with references read."""
    cache: dict[tuple[str, str], Mapping[str, Any] | None] = {}
    env: dict[str, str] = {}
    secrets: list[str] = []

    async def read(kind: str, name: str, where: str) -> Mapping[str, Any] | None:
        if (kind, name) not in cache:
            if reader is None:
                raise ProviderUnavailable(f"{where}: the tmux provider has no Kubernetes client to read {kind} {name}")
            cache[kind, name] = await reader.read(kind, namespace, name)
        return cache[kind, name]

    for index, entry in enumerate(agent.get("envFrom") or ()):
        if not isinstance(entry, Mapping):
            continue
        if entry.get("secretRef"):
            kind, ref = SECRET, entry.get("secretRef")
        else:
            kind, ref = CONFIG_MAP, entry.get("configMapRef")
        if not isinstance(ref, Mapping) or not ref.get("name"):
            continue
        where = f"spec.agent.envFrom[{index}]"
        obj = await read(kind, ref["name"], where)
        if obj is None:
            if ref.get("optional"):
                continue
            raise ProviderUnavailable(f"{where}: {kind} {namespace}/{ref['name']} not found{WAITING}")
        prefix = entry.get("prefix") or ""
        for key, value in object_data(kind, obj).items():
            if _ENV_NAME.match(prefix + key):
                env[prefix + key] = value
                if kind == SECRET:
                    secrets.append(value)

    for entry in agent.get("env") or ():
        if not isinstance(entry, Mapping) or not entry.get("name"):
            continue
        name = str(entry["name"])
        source = entry.get("valueFrom")
        if not isinstance(source, Mapping):
            env[name] = _expanded(name, str(entry.get("value") or ""), env)
            continue
        kind, ref = (SECRET, source.get("secretKeyRef")) if source.get("secretKeyRef") else (
            CONFIG_MAP, source.get("configMapKeyRef"))
        if not isinstance(ref, Mapping) or not ref.get("name"):
            continue  # fieldRef/resourceFieldRef: validation rejected them
        where = f"spec.agent.env[{name}]"
        obj = await read(kind, ref["name"], where)
        data = object_data(kind, obj) if obj is not None else {}
        if ref.get("key") not in data:
            if ref.get("optional"):
                continue
            missing = " not found" if obj is None else f" has no key {ref.get('key')!r}"
            raise ProviderUnavailable(f"{where}: {kind} {namespace}/{ref['name']}{missing}{WAITING}")
        env[name] = data[ref["key"]]
        if kind == SECRET:
            secrets.append(data[ref["key"]])
    total = sum(_size(name) + _size(value) + 2 for name, value in env.items())  # NAME=value\0
    if total > MAX_ENVIRONMENT_BYTES:
        raise InvalidConfiguration(
            f"spec.agent.env: the environment holds {total} bytes, more than {MAX_ENVIRONMENT_BYTES}")
    return AgentEnv(values=env, secret_values=tuple(secrets))


def expansion_problems(agent: Mapping[str, Any]) -> list[str]:
    """The `env` values whose expansion is too large already with what the configuration itself
    says (Secret and ConfigMap values counted as empty): for providers whose environment the
    kubelet expands (pods), so a bomb is refused before it reaches a node. Pure, bounded."""
    env: dict[str, str] = {}
    for entry in agent.get("env") or ():
        if not isinstance(entry, Mapping) or not entry.get("name"):
            continue
        name = str(entry["name"])
        if isinstance(entry.get("valueFrom"), Mapping):
            env[name] = ""
            continue
        try:
            env[name] = _expanded(name, str(entry.get("value") or ""), env)
        except InvalidConfiguration as invalid:
            return invalid.problems
    return []


def _expanded(name: str, text: str, env: Mapping[str, str]) -> str:
    try:
        return expand(text, env)
    except ExpansionTooLarge as too_large:
        raise InvalidConfiguration(
            f"spec.agent.env[{name}].value: {too_large} once its $(VAR) references are expanded"
            " (a variable may hold at most that much)") from None


async def secret_values(agent: Mapping[str, Any], namespace: str, reader: ObjectReader | None) -> list[str]:
    """The values of the Secrets `agent` references (for exact redaction). Missing or forbidden
    Secrets are skipped (pattern redaction still applies); an unreachable API raises, rather than
    publishing a log redacted less than it should be."""
    if reader is None:
        return []
    wanted: list[tuple[str, str | None]] = []
    for entry in agent.get("envFrom") or ():
        ref = (entry or {}).get("secretRef") if isinstance(entry, Mapping) else None
        if isinstance(ref, Mapping) and ref.get("name"):
            wanted.append((ref["name"], None))
    for entry in agent.get("env") or ():
        source = (entry or {}).get("valueFrom") if isinstance(entry, Mapping) else None
        ref = source.get("secretKeyRef") if isinstance(source, Mapping) else None
        if isinstance(ref, Mapping) and ref.get("name"):
            wanted.append((ref["name"], ref.get("key")))
    values: list[str] = []
    read: dict[str, Mapping[str, Any] | None] = {}
    for name, key in dict.fromkeys(wanted):
        if name not in read:
            try:
                read[name] = await reader.read(SECRET, namespace, name)
            except ReadForbidden:
                read[name] = None
        data = object_data(SECRET, read[name]) if read[name] is not None else {}
        values += [value for k, value in data.items() if key is None or k == key]
    return values


def object_data(kind: str, obj: Mapping[str, Any]) -> dict[str, str]:
    """The key/value pairs of a Secret (base64 `data`, plain `stringData`) or a ConfigMap
    (plain `data`, base64 `binaryData`), as text."""
    encoded, plain = ("data", "stringData") if kind == SECRET else ("binaryData", "data")
    values = {key: _decoded(value) for key, value in (obj.get(encoded) or {}).items()}
    values.update({key: str(value) for key, value in (obj.get(plain) or {}).items() if value is not None})
    return values


def expand(text: str, env: Mapping[str, str], limit: int = MAX_EXPANDED_VALUE_BYTES) -> str:
    """Kubernetes' `$(VAR)` expansion (`third_party/forked/golang/expansion`), bounded.

    `$(NAME)` becomes `env[NAME]` when defined, else stays `$(NAME)` as written; the name is
    everything up to the first `)`. `$$` becomes `$`; a `$` before anything else, a lone `$` at
    the end and an unterminated `$(` stay as written. Raises `ExpansionTooLarge` as soon as the
    result would exceed `limit` UTF-8 bytes: the oversized string is never built.
    """
    pieces: list[str] = []
    size = 0

    def emit(piece: str) -> None:
        nonlocal size
        size += _size(piece)
        if size > limit:
            raise ExpansionTooLarge(limit)
        pieces.append(piece)

    checkpoint = cursor = 0
    while cursor < len(text):
        if text[cursor] == "$" and cursor + 1 < len(text):
            emit(text[checkpoint:cursor])
            following = text[cursor + 1]
            close = text.find(")", cursor + 2) if following == "(" else -1
            if following == "$":
                emit("$")
            elif close != -1:
                reference = text[cursor + 2:close]
                emit(env[reference] if reference in env else f"$({reference})")
                cursor = close - 1
            else:
                emit("$" + following)  # `$(` without `)`, or `$x`
            cursor += 1
            checkpoint = cursor + 1
        cursor += 1
    emit(text[checkpoint:])
    return "".join(pieces)


def _size(text: str) -> int:
    """UTF-8 bytes of `text`, without building the encoding of an ASCII string."""
    return len(text) if text.isascii() else len(text.encode("utf-8", errors="surrogatepass"))


def _decoded(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    try:
        return base64.b64decode(str(value), validate=True).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return str(value)
