"""The agent's environment on the host, computed as a kubelet would compute a container's.

A pod gets its Secrets from the kubelet; a session without a kubelet (tmux, an external platform
over http) does not, so its provider reads the Secrets and ConfigMaps the configuration
references from the API (`get secrets`/`configmaps` in the session's namespace) when it starts
the session:

* `envFrom` first (each key of the ConfigMap or Secret, with the prefix; keys that are not valid
  variable names skipped), then `env` in order — later entries win, as in a pod;
* `value` literals, with `$(VAR)` expanded from the variables defined before it (`$$` is a `$`);
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

from .errors import ProviderUnavailable

SECRET: Final = "secret"
WAITING: Final = "; the session starts once it exists"
CONFIG_MAP: Final = "configmap"

_ENV_NAME: Final = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_REFERENCE: Final = re.compile(r"\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)")


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
            env[name] = expand(str(entry.get("value") or ""), env)
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
    return AgentEnv(values=env, secret_values=tuple(secrets))


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


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes `$(VAR)` expansion: defined variables are replaced, others left as written."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _REFERENCE.sub(replace, text)


def _decoded(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    try:
        return base64.b64decode(str(value), validate=True).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return str(value)
