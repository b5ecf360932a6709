"""The provider contract's vocabulary: typed errors with §1 codes, the registry, SessionRef."""

from __future__ import annotations

import pytest

from agent_sessions.api import constants as c
from agent_sessions.api.session import CapabilitiesStatus
from agent_sessions.providers import (
    Capabilities,
    InvalidConfiguration,
    Provider,
    ProviderError,
    ProviderRegistry,
    ProviderUnavailable,
    SessionAlreadyExists,
    SessionNotFound,
    SessionRef,
)
from agent_sessions.providers.pod import PodProvider


@pytest.mark.parametrize(
    ("error", "code"),
    [
        pytest.param(SessionNotFound("gone"), "session_not_found", id="not-found"),
        pytest.param(SessionAlreadyExists("taken"), "session_already_exists", id="already-exists"),
        pytest.param(ProviderUnavailable("down"), "provider_unavailable", id="unavailable"),
        pytest.param(InvalidConfiguration(["bad"]), "invalid_configuration", id="invalid"),
    ],
)
def test_every_provider_error_carries_its_wire_code(error, code):
    assert isinstance(error, ProviderError)
    assert error.code == code


def test_provider_unavailable_carries_the_retry_after_hint():
    assert ProviderUnavailable("slow down", retry_after=7.5).retry_after == 7.5
    assert ProviderUnavailable("down").retry_after is None


@pytest.mark.parametrize(
    ("given", "problems", "message"),
    [
        pytest.param(["a: x", "b: y"], ["a: x", "b: y"], "a: x; b: y", id="list"),
        pytest.param("only one", ["only one"], "only one", id="single-string"),
    ],
)
def test_invalid_configuration_keeps_every_problem(given, problems, message):
    error = InvalidConfiguration(given)
    assert error.problems == problems
    assert str(error) == message


class _Stub:
    type_name = "stub"
    made = 0

    def __init__(self) -> None:
        type(self).made += 1


def test_registry_builds_each_provider_once_and_shares_it():
    registry = ProviderRegistry()
    _Stub.made = 0
    registry.register("stub", _Stub)
    assert registry.get("stub") is registry.get("stub")
    assert _Stub.made == 1
    assert registry.types() == ("stub",)


def test_registry_reports_an_unknown_provider_as_invalid_configuration():
    registry = ProviderRegistry()
    registry.register("pod", _Stub)
    with pytest.raises(InvalidConfiguration, match=r"spec.provider: provider 'cloud' is not available in this operator") as caught:
        registry.get("cloud")
    assert caught.value.code == "invalid_configuration"


def test_registry_refuses_a_second_registration_unless_replacing():
    registry = ProviderRegistry()
    registry.register("stub", _Stub)
    with pytest.raises(ValueError, match="already registered"):
        registry.register("stub", _Stub)
    registry.register("stub", lambda: "replacement", replace=True)  # type: ignore[arg-type,return-value]
    assert registry.get("stub") == "replacement"


def test_session_ref_from_an_agent_session_object_owns_what_it_creates():
    obj = {
        "apiVersion": c.API_VERSION,
        "kind": c.SESSION_KIND,
        "metadata": {"name": "demo", "namespace": "team-a", "uid": "u-1", "generation": 4},
    }
    ref = SessionRef.from_object(obj, {"provider": "pod"}, config_hash="abc")
    assert (ref.namespace, ref.name, ref.uid, ref.generation, ref.config_hash) == ("team-a", "demo", "u-1", 4, "abc")
    assert ref.owner_reference() == {
        "apiVersion": "agentsession.dev/v1alpha1",
        "kind": "AgentSession",
        "name": "demo",
        "uid": "u-1",
        "controller": True,
        "blockOwnerDeletion": True,
    }


def test_session_ref_is_hashable_by_identity_despite_its_config_dict():
    ref = SessionRef(namespace="n", name="s", uid="u", config={"agent": {}})
    assert hash(ref) == hash(SessionRef(namespace="n", name="s", uid="u", config={"other": 1}))


def test_providers_return_the_status_model_itself():
    caps = PodProvider(core_api=object()).capabilities()
    assert type(caps) is CapabilitiesStatus
    assert caps.model_dump(by_alias=True)["resourceLimits"] is True


def test_pod_provider_implements_the_protocol_and_supports_everything():
    provider = PodProvider(core_api=object())
    assert isinstance(provider, Provider)
    assert provider.type_name == "pod"
    assert provider.capabilities() == Capabilities(
        streaming=True, history=True, logs=True, resume=True, cancel=True, resource_limits=True
    )
