"""The agent's environment as a kubelet would compute it: envFrom, env, $(VAR), references."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import pytest

from agent_sessions.providers import ProviderUnavailable
from agent_sessions.providers.environment import ReadForbidden, expand, object_data, resolve_env, secret_values


def b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


class FakeReader:
    def __init__(self, objects: Mapping[tuple[str, str], Any], forbidden: tuple[str, ...] = ()) -> None:
        self.objects = objects
        self.forbidden = forbidden
        self.reads: list[tuple[str, str, str]] = []

    async def read(self, kind: str, namespace: str, name: str):
        self.reads.append((kind, namespace, name))
        if name in self.forbidden:
            raise ReadForbidden(f"read {kind} {name}: forbidden")
        return self.objects.get((kind, name))


OBJECTS = {
    ("secret", "creds"): {"data": {"api-key": b64("k-123"), "user": b64("ada")}},
    ("secret", "bundle"): {"data": {"TOKEN": b64("t-456"), "not a name": b64("x")}},
    ("configmap", "settings"): {"data": {"MODE": "dev"}, "binaryData": {"BLOB": b64("raw")}},
}


async def test_env_from_then_env_in_order_with_references_read_once():
    reader = FakeReader(OBJECTS)
    agent = {
        "envFrom": [{"secretRef": {"name": "bundle"}}, {"configMapRef": {"name": "settings"}, "prefix": "CFG_"}],
        "env": [
            {"name": "MODE", "value": "prod-$(CFG_MODE)-$$-$(UNDEFINED)"},
            {"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "api-key"}}},
            {"name": "USER", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "user"}}},
            {"name": "TOKEN", "value": "overridden"},
        ],
    }
    env = await resolve_env(agent, "team-a", reader)
    assert env.values == {"TOKEN": "overridden", "CFG_MODE": "dev", "CFG_BLOB": "raw",
                          "MODE": "prod-dev-$-$(UNDEFINED)", "API_KEY": "k-123", "USER": "ada"}
    assert set(env.secret_values) == {"t-456", "k-123", "ada"}
    assert reader.reads.count(("secret", "team-a", "creds")) == 1


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "K", "valueFrom": {"secretKeyRef": {"name": "missing", "key": "k"}}},
         "spec.agent.env[K]: secret team-a/missing not found"),
        ({"name": "K", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "nope"}}},
         "spec.agent.env[K]: secret team-a/creds has no key 'nope'"),
        ({"name": "K", "valueFrom": {"configMapKeyRef": {"name": "missing", "key": "k"}}},
         "spec.agent.env[K]: configmap team-a/missing not found"),
    ],
)
async def test_a_missing_required_reference_makes_the_start_wait(entry, message):
    with pytest.raises(ProviderUnavailable, match=message.replace("[", r"\[").replace("]", r"\]")):
        await resolve_env({"env": [entry]}, "team-a", FakeReader(OBJECTS))


async def test_optional_references_that_are_missing_are_skipped():
    agent = {"env": [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "missing", "key": "k", "optional": True}}}],
             "envFrom": [{"secretRef": {"name": "absent", "optional": True}}]}
    assert (await resolve_env(agent, "team-a", FakeReader(OBJECTS))).values == {}


async def test_references_without_a_kubernetes_client_cannot_be_resolved():
    agent = {"env": [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "k"}}}]}
    with pytest.raises(ProviderUnavailable, match="no Kubernetes client"):
        await resolve_env(agent, "team-a", None)
    assert (await resolve_env({"env": [{"name": "A", "value": "1"}]}, "team-a", None)).values == {"A": "1"}


async def test_secret_values_for_redaction_skip_forbidden_and_missing_secrets():
    agent = {"env": [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "api-key"}}},
                     {"name": "L", "valueFrom": {"secretKeyRef": {"name": "hidden", "key": "k"}}},
                     {"name": "M", "valueFrom": {"secretKeyRef": {"name": "missing", "key": "k"}}}],
             "envFrom": [{"secretRef": {"name": "bundle"}}, {"configMapRef": {"name": "settings"}}]}
    values = await secret_values(agent, "team-a", FakeReader(OBJECTS, forbidden=("hidden",)))
    assert sorted(values) == sorted(["k-123", "t-456", "x"])


def test_object_data_decodes_secrets_and_config_maps():
    assert object_data("secret", {"data": {"a": b64("1")}, "stringData": {"b": "2"}}) == {"a": "1", "b": "2"}
    assert object_data("configmap", {"data": {"a": "1"}, "binaryData": {"b": b64("2")}}) == {"a": "1", "b": "2"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [("$(A)", "1"), ("$$(A)", "$(A)"), ("$(B)", "$(B)"), ("x$(A)y$(A)", "x1y1"), ("$A", "$A")],
)
def test_expand_follows_kubernetes(text, expected):
    assert expand(text, {"A": "1"}) == expected
