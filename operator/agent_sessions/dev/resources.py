"""The resources an emulated API server serves, and their discovery documents.

Why this exists: clients find resources through discovery before they touch them —
``kubectl`` maps ``ags`` to ``agentsessions.agentsession.dev/v1alpha1`` via ``/apis``,
kopf waits for ``v1/namespaces`` and reads ``status`` from the subresource list to decide
where to write status.  kmock 0.8 reports ``/api/v1`` as group-version ``/v1``, which
kubectl cannot map, and knows no CRDs unless told.  The catalogue here is the single
source for routing, discovery and per-resource behaviour (scope, status subresource,
generation tracking, admission schema, printer columns, selectable fields).

Built-in resources come from kmock's bundled discovery snapshot of a recent cluster
(``kmock.ResourcesArray.load_bundled``): kinds, verbs, short names and subresources as
a real server lists them.  Custom resources come from CRDs created through the API.
"""

from __future__ import annotations

import functools
import json
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import kmock

from agent_sessions.dev.admission import INVALID, REQUIRED, UNSUPPORTED, CRDValidator, FieldError

# Groups in kmock's snapshot that are not built into kube-apiserver (aggregated or CRDs).
_FOREIGN_GROUPS = frozenset({"metrics.k8s.io", "gateway.networking.k8s.io"})
# Subresources this emulator implements; discovery lists no others.
_SERVED_SUBRESOURCES = {"status": ["get", "patch", "update"], "log": ["get"]}
_VERSION = re.compile(r"v(\d+)(?:(alpha|beta)(\d+))?")
_PERMISSIVE_SCHEMA = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


@dataclass
class ResourceType:
    """One served group/version/resource and how the emulated server treats it."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ("create", "delete", "deletecollection", "get", "list", "patch",
                              "update", "watch")
    subresources: frozenset[str] = frozenset()
    custom: bool = False
    validator: CRDValidator = field(default=None, repr=False)  # type: ignore[assignment]
    printer_columns: tuple[dict, ...] = ()
    selectable_fields: tuple[str, ...] = ()
    schema: dict | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.validator is None:  # built-ins: ObjectMeta rules only, any other content
            self.validator = CRDValidator(_permissive_crd(self.group, self.version, self.kind))
        self.validator.api_version = self.api_version  # "v1", not "/v1", for the core group

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> tuple[str, str]:
        """The storage key: all versions of a resource share one set of objects."""
        return self.group, self.plural

    @property
    def qualified_plural(self) -> str:
        """``pods`` or ``agentsessions.agentsession.dev``, as error messages name it."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def qualified_kind(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    @property
    def tracks_generation(self) -> bool:
        """Custom resources, and built-ins outside the core group with a status subresource
        (Deployments, Jobs, ...), carry metadata.generation; core kinds (as of 1.31) do not."""
        return self.custom or (self.has_status and self.group != "")

    def discovery_entries(self) -> list[dict]:
        entry = {"name": self.plural, "singularName": self.singular or self.kind.lower(),
                 "namespaced": self.namespaced, "kind": self.kind, "verbs": list(self.verbs)}
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        if self.categories:
            entry["categories"] = list(self.categories)
        entries = [entry]
        for sub in sorted(self.subresources):
            entries.append({"name": f"{self.plural}/{sub}", "singularName": "",
                            "namespaced": self.namespaced, "kind": self.kind,
                            "verbs": _SERVED_SUBRESOURCES[sub]})
        return entries


@functools.cache
def _builtin_types() -> tuple[ResourceType, ...]:
    bundled = kmock.ResourcesArray()
    with warnings.catch_warnings():  # kmock 0.8 uses the deprecated importlib.resources API
        warnings.simplefilter("ignore", DeprecationWarning)
        bundled.load_bundled()
    types = []
    for ref in bundled:
        info = bundled[ref]
        if ref.group in _FOREIGN_GROUPS or "get" not in info.verbs or not info.kind:
            continue
        served = {sub for sub in info.subresources if sub in _SERVED_SUBRESOURCES}
        if (ref.group, ref.plural) != ("", "pods"):
            served.discard("log")
        types.append(ResourceType(
            group=ref.group or "", version=ref.version or "v1", plural=ref.plural or "",
            kind=info.kind, namespaced=bool(info.namespaced),
            singular=info.singular or info.kind.lower(),
            short_names=tuple(sorted(info.shortnames)), categories=tuple(sorted(info.categories)),
            verbs=tuple(sorted(info.verbs)), subresources=frozenset(served)))
    return tuple(types)


def _permissive_crd(group: str, version: str, kind: str) -> dict:
    return {"metadata": {"name": kind}, "spec": {
        "group": group, "names": {"kind": kind},
        "versions": [{"name": version, "served": True, "storage": True,
                      "schema": {"openAPIV3Schema": _PERMISSIVE_SCHEMA}}]}}


def version_priority(version: str) -> tuple:
    """Kubernetes' version order: GA before beta before alpha, higher numbers first."""
    match = _VERSION.fullmatch(version)
    if match is None:
        return (3, 0, 0, version)
    major, stage, minor = match.groups()
    rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (rank, -int(major), -int(minor or 0), version)


def resource_types_from_crd(crd: dict) -> list[ResourceType]:
    """One ResourceType per served version of an apiextensions.k8s.io/v1 CRD."""
    spec = crd["spec"]
    names = spec["names"]
    result = []
    for version in spec.get("versions", []):
        if not version.get("served", True):
            continue
        subresources = frozenset(name for name in (version.get("subresources") or {})
                                 if name == "status")
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        result.append(ResourceType(
            group=spec["group"], version=version["name"], plural=names["plural"],
            kind=names["kind"], namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            singular=names.get("singular") or names["kind"].lower(),
            short_names=tuple(names.get("shortNames") or ()),
            categories=tuple(names.get("categories") or ()),
            subresources=subresources, custom=True,
            validator=CRDValidator(crd, version["name"]) if schema else CRDValidator(
                _permissive_crd(spec["group"], version["name"], names["kind"])),
            printer_columns=tuple(version.get("additionalPrinterColumns") or ()),
            selectable_fields=tuple(item["jsonPath"].lstrip(".")
                                    for item in version.get("selectableFields") or ()),
            schema=schema,
        ))
    return result


class ResourceCatalogue:
    """Every served resource by group/version/plural, plus the discovery documents."""

    def __init__(self) -> None:
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        self._crd_owned: dict[str, list[tuple[str, str, str]]] = {}

    def add(self, rtype: ResourceType) -> None:
        self._types[(rtype.group, rtype.version, rtype.plural)] = rtype

    def load_builtins(self) -> None:
        """The built-in resources of kube-apiserver, from kmock's bundled snapshot."""
        for rtype in _builtin_types():
            self.add(rtype)

    def register_crd(self, crd: dict) -> list[ResourceType]:
        """(Re-)registers the served versions of a CRD; returns them."""
        name = crd["metadata"]["name"]
        self.unregister_crd(name)
        types = resource_types_from_crd(crd)
        for rtype in types:
            self.add(rtype)
        self._crd_owned[name] = [(t.group, t.version, t.plural) for t in types]
        return types

    def unregister_crd(self, name: str) -> None:
        for key in self._crd_owned.pop(name, []):
            self._types.pop(key, None)

    def get(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._types.get((group, version, plural))

    def __iter__(self) -> Iterator[ResourceType]:
        return iter(list(self._types.values()))

    def versions_of(self, group: str) -> list[str]:
        return sorted({t.version for t in self if t.group == group}, key=version_priority)

    def resolve(self, name: str) -> ResourceType:
        """A resource by ``plural``, ``kind``, short name or singular, optionally qualified
        as ``plural.group``, ``group/version/plural`` or ``version/plural``; preferred version."""
        parts = name.split("/")
        if len(parts) == 3:
            found = self.get(parts[0], parts[1], parts[2])
            if found:
                return found
        elif len(parts) == 2:
            found = self.get("", parts[0], parts[1])
            if found:
                return found
        simple, _, group = name.partition(".")
        candidates = [t for t in self if (not group or t.group == group) and (
            simple in (t.plural, t.singular, t.kind) or simple in t.short_names
            or simple.lower() == t.kind.lower())]
        if not candidates:
            raise KeyError(f"unknown resource {name!r}")
        # Core before other groups (as kubectl prefers), then the group's preferred version.
        candidates.sort(key=lambda t: (t.group != "", t.group, version_priority(t.version)))
        return candidates[0]

    # --- discovery documents ----------------------------------------------------------

    def api_versions(self, server_address: str) -> dict:
        return {"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                "serverAddress": server_address}]}

    def resource_list(self, group: str, version: str) -> dict | None:
        types = [t for t in self if t.group == group and t.version == version]
        if not types:
            return None
        resources = [entry for t in sorted(types, key=lambda t: t.plural)
                     for entry in t.discovery_entries()]
        return {"kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": f"{group}/{version}" if group else version,
                "resources": resources}

    def group(self, name: str) -> dict | None:
        versions = self.versions_of(name)
        if not name or not versions:
            return None
        listed = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
        return {"kind": "APIGroup", "apiVersion": "v1", "name": name, "versions": listed,
                "preferredVersion": listed[0]}

    def group_list(self) -> dict:
        names = sorted({t.group for t in self if t.group})
        groups = [self.group(name) for name in names]
        for item in groups:
            if item is not None:
                item.pop("kind"), item.pop("apiVersion")
        return {"kind": "APIGroupList", "apiVersion": "v1",
                "groups": [g for g in groups if g is not None]}

    def group_versions(self) -> Iterable[tuple[str, str]]:
        return sorted({(t.group, t.version) for t in self})


def crd_names_errors(crd: Any) -> list[FieldError]:
    """What makes the API server refuse a CRD before any schema check (the parts the
    emulator relies on: names, scope, exactly one storage version)."""
    if not isinstance(crd, dict) or not isinstance(crd.get("spec"), dict):
        return [FieldError("spec", REQUIRED, REQUIRED)]
    spec, problems = crd["spec"], []
    names = spec.get("names") if isinstance(spec.get("names"), dict) else {}
    for path, value in (("spec.names.plural", names.get("plural")),
                        ("spec.names.kind", names.get("kind")), ("spec.group", spec.get("group"))):
        if not value:
            problems.append(FieldError(path, REQUIRED, REQUIRED))
    name = (crd.get("metadata") or {}).get("name")
    if name != f"{names.get('plural')}.{spec.get('group')}":
        problems.append(FieldError("metadata.name", INVALID, f"{INVALID}: {json.dumps(name)}: "
                                   'must be spec.names.plural+"."+spec.group'))
    if sum(1 for v in spec.get("versions") or [] if isinstance(v, dict) and v.get("storage")) != 1:
        problems.append(FieldError("spec.versions", INVALID, f"{INVALID}: "
                                   f"{json.dumps(spec.get('versions'))[:80]}: must have exactly "
                                   "one version marked as storage version"))
    if spec.get("scope", "Namespaced") not in ("Namespaced", "Cluster"):
        problems.append(FieldError("spec.scope", UNSUPPORTED, f'{UNSUPPORTED}: '
                                   f'{json.dumps(spec.get("scope"))}: supported values: '
                                   '"Cluster", "Namespaced"'))
    return problems
