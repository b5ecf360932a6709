"""A container's environment as the kubelet computes it (``envFrom``, ``env`` with ``$(VAR)``
expansion, Secret and ConfigMap references, ``fieldRef``), as pure functions over a reader
of the API."""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Callable, Mapping
from typing import Final




logger = logging.getLogger(__name__)


_ENV_NAME: Final = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_REFERENCE: Final = re.compile(r"\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)")
_METADATA_KEY: Final = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


class ContainerConfigError(Exception):
    """The container cannot be created yet (a missing Secret, ConfigMap or key); the message is
    the kubelet's."""


Reader = Callable[[str, str, str], dict | None]
"""`read(resource, namespace, name)`: an object of the API, None if there is none."""


def expand(text: str, env: Mapping[str, str]) -> str:
    """`$(VAR)` replaced by `env["VAR"]` when defined (left as written otherwise), `$$` by `$`:
    the kubelet's expansion of env values, command and args."""
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))
    return _REFERENCE.sub(replace, text)


def resolve_env(pod: dict, container: dict, *, pod_ip: str, host_ip: str, read: Reader) -> dict[str, str]:
    """The container's environment as the kubelet computes it: `envFrom` sources in order, then
    `env` (later entries win; literal values expanded against what is defined before them).
    Raises ContainerConfigError for a missing required Secret, ConfigMap or key."""
    namespace = pod["metadata"]["namespace"]
    env: dict[str, str] = {}
    for source in container.get("envFrom") or ():
        prefix = source.get("prefix") or ""
        for key, resource in (("configMapRef", "configmaps"), ("secretRef", "secrets")):
            ref = source.get(key)
            if ref is None:
                continue
            obj = read(resource, namespace, ref.get("name") or "")
            if obj is None:
                if ref.get("optional"):
                    continue
                raise ContainerConfigError(_not_found(resource, ref.get("name") or ""))
            for name, value in _data(resource, obj).items():
                if _ENV_NAME.match(prefix + name):  # the kubelet skips invalid names (with an Event)
                    env[prefix + name] = value
    for entry in container.get("env") or ():
        name = entry.get("name") or ""
        source = entry.get("valueFrom")
        if source is None:
            env[name] = expand(str(entry.get("value") or ""), env)
            continue
        value = _value_from(source, pod, namespace, pod_ip=pod_ip, host_ip=host_ip, read=read)
        if value is not None:
            env[name] = value
    return env


class VolumeSetupError(ContainerConfigError):
    """A volume cannot be set up (a missing Secret or key): the kubelet keeps the pod in
    `ContainerCreating` with its `MountVolume.SetUp failed …` message, retried when Secrets change."""

    reason = "ContainerCreating"


DEFAULT_SECRET_MODE: Final = 0o644


def secret_volume_files(volume: dict, namespace: str, read: Reader) -> dict[str, tuple[str, int]] | None:
    """The files of a `secret` volume as the kubelet writes them: relative path → (content,
    mode), every key of the Secret or the volume's `items`; None for a missing optional Secret.
    Raises VolumeSetupError for a missing Secret or item key (the kubelet's message)."""
    source = volume.get("secret") or {}
    name = source.get("secretName") or ""
    obj = read("secrets", namespace, name)
    if obj is None:
        if source.get("optional"):
            return None
        raise VolumeSetupError(f'MountVolume.SetUp failed for volume "{volume.get("name")}" : '
                               f'secret "{name}" not found')
    data = _data("secrets", obj)
    mode = source.get("defaultMode")
    mode = DEFAULT_SECRET_MODE if mode is None else int(mode)
    items = source.get("items")
    if not items:
        return {key: (value, mode) for key, value in data.items()}
    files: dict[str, tuple[str, int]] = {}
    for item in items:
        key = item.get("key") or ""
        if key not in data:
            if source.get("optional"):
                continue
            raise VolumeSetupError(f'MountVolume.SetUp failed for volume "{volume.get("name")}" : '
                                   f'references non-existent secret key: {key}')
        item_mode = item.get("mode")
        files[str(item.get("path") or key)] = (data[key], mode if item_mode is None else int(item_mode))
    return files


def _value_from(source: dict, pod: dict, namespace: str, *, pod_ip: str, host_ip: str,
                read: Reader) -> str | None:
    for key, resource, kind in (("secretKeyRef", "secrets", "Secret"),
                                ("configMapKeyRef", "configmaps", "ConfigMap")):
        ref = source.get(key)
        if ref is None:
            continue
        name, wanted = ref.get("name") or "", ref.get("key") or ""
        obj = read(resource, namespace, name)
        if obj is None:
            if ref.get("optional"):
                return None
            raise ContainerConfigError(_not_found(resource, name))
        data = _data(resource, obj)
        if wanted not in data:
            if ref.get("optional"):
                return None
            raise ContainerConfigError(f"couldn't find key {wanted} in {kind} {namespace}/{name}")
        return data[wanted]
    if "fieldRef" in source:
        return _field(pod, source["fieldRef"].get("fieldPath") or "", pod_ip=pod_ip, host_ip=host_ip)
    logger.debug("pod %s/%s: env source %s not supported by the local pod runner; skipped",
                 namespace, pod["metadata"]["name"], sorted(source))
    return None


def _field(pod: dict, path: str, *, pod_ip: str, host_ip: str) -> str:
    meta, spec = pod["metadata"], pod.get("spec") or {}
    fields = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName") or "default",
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": host_ip,
        "status.hostIPs": host_ip,
    }
    if path in fields:
        return str(fields[path] or "")
    match = _METADATA_KEY.match(path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2)) or "")
    raise ContainerConfigError(f"unsupported fieldPath: {path}")


def _not_found(resource: str, name: str) -> str:
    return f'{"secret" if resource == "secrets" else "configmap"} "{name}" not found'


def _data(resource: str, obj: dict) -> dict[str, str]:
    """A ConfigMap's data, or a Secret's decoded `data` with `stringData` over it (the API
    server folds `stringData` in on write; the embedded one keeps it as written)."""
    if resource == "configmaps":
        return {k: str(v) for k, v in (obj.get("data") or {}).items()}
    values: dict[str, str] = {}
    for key, encoded in (obj.get("data") or {}).items():
        try:
            values[key] = base64.b64decode(str(encoded), validate=True).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            values[key] = str(encoded)
    values.update({k: str(v) for k, v in (obj.get("stringData") or {}).items()})
    return values
