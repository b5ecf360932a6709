"""Issue 10, items 3 and 9: bounded input. Each attack as it was reproduced, and why it now fails:

* an environment "bomb": variables that each reference the previous one thousands of times took
  the operator to 3.25 GB and 805 MB request bodies. Expansion (Kubernetes' semantics exactly)
  now stops at its bound while it runs, with a problem naming `spec.agent.env[NAME]`;
* `maxDuration: "9999…9h"` raised OverflowError every minute and the status went stale: the
  API server refuses it (pattern and CEL, both backends, word for word); forced past admission
  it is a ConfigValid=False problem, and no deadline can overflow;
* a 900-level `meta` raised RecursionError in the operator's index and the session never got a
  status: it is indexed, and ConfigValid=False names the depth limit;
* admission refused none of: env names with NUL/newline, negative or 1e100 quantities, requests
  above limits, `subPath: ../..`, image references with spaces or a trailing newline — the
  corpus (tests/api/invalid/45-86) covers them; here each is sent to both backends once more.
"""

from __future__ import annotations

import time
import tracemalloc
from datetime import UTC, datetime

import pytest
from support.backends import api, kubelet, real_cluster  # noqa: F401 (fixtures, parametrised by backend)
from support.cluster.fixtures import control_plane  # noqa: F401
from support.embedded import kubeconfig  # noqa: F401
from support.operators import operator, operators, start_operator  # noqa: F401
from support.sessions import IMAGE, session
from support.waits import condition, wait_session

from agent_sessions.api import constants as c
from agent_sessions.api.json_shape import MAX_FREE_FORM_DEPTH, copy_json, nesting_depth
from agent_sessions.api.session import AgentSessionStatus
from agent_sessions.config import ConfigInvalid, resolve_config
from agent_sessions.lifecycle import LifecycleSettings, idle_deadline, max_duration_deadline, start_deadline
from agent_sessions.providers.environment import (
    MAX_ENVIRONMENT_BYTES,
    MAX_EXPANDED_VALUE_BYTES,
    ExpansionTooLarge,
    expand,
    expansion_problems,
    resolve_env,
)
from agent_sessions.providers.errors import InvalidConfiguration
from agent_sessions.reconciler.inputs import parse_status, session_input, spec_problems

NAMESPACE = "default"


def deep(levels: int) -> dict:
    root: dict = {}
    node = root
    for _ in range(levels - 1):
        node["a"] = {}
        node = node["a"]
    return root


# --- the environment bomb --------------------------------------------------------------------

def env_bomb(levels: int = 6, fan_out: int = 6000) -> dict:
    """~180 KB of configuration, every value within the CRD's 32768 characters: each variable is
    the previous one `fan_out` times (unbounded, V1 is 180 MB and V5 some 10^21 bytes)."""
    env = [{"name": "V0", "value": "x" * 30000}]
    for level in range(1, levels):
        env.append({"name": f"V{level}", "value": f"$(V{level - 1})" * fan_out})
    return {"env": env}


async def test_the_env_bomb_stops_at_its_bound_with_a_problem_naming_the_variable():
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(InvalidConfiguration) as raised:
            await resolve_env(env_bomb(), NAMESPACE, None)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert raised.value.problems == [
        f"spec.agent.env[V1].value: expands to more than {MAX_EXPANDED_VALUE_BYTES} bytes once its $(VAR)"
        " references are expanded (a variable may hold at most that much)"]
    # Bounded: a few times the bound, however large the unbounded result would be.
    assert peak < 8 * MAX_EXPANDED_VALUE_BYTES, f"peak {peak} bytes"
    assert elapsed < 1.0, f"{elapsed:.3f}s"


def test_the_env_bomb_is_found_without_reading_anything_for_providers_the_kubelet_expands():
    started = time.perf_counter()
    assert expansion_problems(env_bomb()) == [
        f"spec.agent.env[V1].value: expands to more than {MAX_EXPANDED_VALUE_BYTES} bytes once its $(VAR)"
        " references are expanded (a variable may hold at most that much)"]
    assert time.perf_counter() - started < 1.0


def test_a_pod_session_with_the_env_bomb_is_refused_before_any_pod_is_built():
    from agent_sessions.providers.base import ValidationContext  # noqa: PLC0415
    from agent_sessions.providers.pod.provider import PodProvider  # noqa: PLC0415

    config = {"provider": "pod", "agent": {"image": "example.com/agent:1", "command": ["agent"], **env_bomb()}}
    assert PodProvider(core_api=object()).validate(config, ValidationContext()) == [
        f"spec.agent.env[V1].value: expands to more than {MAX_EXPANDED_VALUE_BYTES} bytes once its $(VAR)"
        " references are expanded (a variable may hold at most that much)"]


async def test_many_variables_each_under_the_bound_cannot_add_up_past_the_environment_bound():
    each = MAX_EXPANDED_VALUE_BYTES - 1000
    env = [{"name": "SEED", "value": "y" * 25000}]
    env += [{"name": f"BIG{i}", "value": "$(SEED)" * (each // 25000)} for i in range(10)]
    with pytest.raises(InvalidConfiguration) as raised:
        await resolve_env({"env": env}, NAMESPACE, None)
    assert raised.value.problems[0].startswith("spec.agent.env: the environment holds ")
    assert raised.value.problems[0].endswith(f"bytes, more than {MAX_ENVIRONMENT_BYTES}")


def test_expansion_raises_before_building_the_oversized_string():
    with pytest.raises(ExpansionTooLarge):
        expand("$(A)" * 1000, {"A": "z" * 1000}, limit=10_000)


@pytest.mark.parametrize(
    "text, expanded",
    [
        pytest.param("$(A)", "a", id="defined"),
        pytest.param("$(LATER)", "$(LATER)", id="defined_later_stays_literal"),
        pytest.param("$(UNKNOWN)", "$(UNKNOWN)", id="unknown_stays_literal"),
        pytest.param("$$(A)", "$(A)", id="escaped"),
        pytest.param("$$$(A)", "$a", id="escaped_dollar_then_reference"),
        pytest.param("$$", "$", id="double_dollar"),
        pytest.param("cost: 5$", "cost: 5$", id="trailing_dollar"),
        pytest.param("$x$(A)", "$xa", id="dollar_before_other"),
        pytest.param("$(A", "$(A", id="unterminated"),
        pytest.param("$(A $(B))", "$(A $(B))", id="name_runs_to_first_paren"),
        pytest.param("$(A)$(B)-$(A)", "ab-a", id="several"),
        pytest.param("ä$(A)ö", "äaö", id="unicode_around"),
    ],
)
def test_expansion_has_exactly_the_kubelets_semantics(text, expanded):
    assert expand(text, {"A": "a", "B": "b"}) == expanded


async def test_only_variables_defined_before_are_expanded_in_order():
    agent = {"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "$(A)-$(C)"}, {"name": "C", "value": "3"},
                     {"name": "A", "value": "$(A)$(A)"}]}
    assert (await resolve_env(agent, NAMESPACE, None)).values == {"A": "11", "B": "1-$(C)", "C": "3"}


# --- the huge maxDuration --------------------------------------------------------------------

HUGE = "9" * 30 + "h"


def test_a_huge_max_duration_forced_past_admission_is_config_valid_false_not_an_exception():
    body = {"metadata": {"name": "s", "namespace": NAMESPACE},
            "spec": {"agent": {"image": IMAGE}, "lifecycle": {"maxDuration": HUGE}}}
    with pytest.raises(ConfigInvalid) as raised:
        resolve_config(body, {})
    assert [str(p) for p in raised.value.problems] == [
        f"spec.lifecycle.maxDuration: invalid duration '{HUGE}': longer than the maximum of 8760h (365 days)"
        ' (set by AgentSession "s")']


@pytest.mark.parametrize("seconds", [float("inf"), float("nan"), 1e300, 10**18])
def test_no_deadline_overflows_whatever_the_settings(seconds):
    settings = LifecycleSettings(provider="pod", start_timeout=seconds, idle_timeout=seconds, max_duration=seconds)
    status = AgentSessionStatus(start_time="2026-01-01T00:00:00Z", last_activity_time="2026-01-01T00:00:00Z")
    for deadline in (start_deadline, idle_deadline, max_duration_deadline):
        assert deadline(status, settings) is None  # no datetime is that far: no deadline


def test_a_deadline_within_reach_is_still_computed():
    settings = LifecycleSettings(provider="pod", max_duration=3600.0)
    status = AgentSessionStatus(start_time="2026-01-01T00:00:00Z")
    assert max_duration_deadline(status, settings) == datetime(2026, 1, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("value, message", [
    (HUGE, f'Invalid value: "{HUGE}": spec.lifecycle.maxDuration in body should match'),
    ("8761h", 'spec.lifecycle.maxDuration: Invalid value: "8761h": must be at most 8760h (365 days)'),
])
def test_a_huge_max_duration_is_refused_at_admission(api, value, message):
    with pytest.raises(Exception) as raised:
        api.create(c.SESSION_PLURAL, session("huge", lifecycle={"maxDuration": value}, agent={"image": IMAGE}))
    assert raised.value.code == 422
    assert message in raised.value.message


# --- the deep meta ---------------------------------------------------------------------------

def test_a_900_level_meta_is_copied_measured_and_refused_without_recursion():
    meta = deep(900)
    assert nesting_depth(meta) == MAX_FREE_FORM_DEPTH + 1  # stops counting past the limit
    assert nesting_depth(copy_json(meta), stop_after=10_000) == 900
    assert spec_problems({"meta": meta}) == [
        f"spec.meta: nested more than {MAX_FREE_FORM_DEPTH} levels deep (objects and arrays)"]
    assert spec_problems({"meta": deep(MAX_FREE_FORM_DEPTH)}) == []


def test_a_meta_too_large_is_refused_with_its_size():
    meta = {f"k{i}": "v" * 1000 for i in range(20)}
    [problem] = spec_problems({"meta": meta})
    assert problem.startswith("spec.meta: ") and problem.endswith(f"bytes as JSON, more than {c.MAX_META_BYTES}")


@pytest.mark.parametrize("spec", [
    {"meta": deep(5000)},
    {"meta": [[[[]]]] * 3, "state": ["Running"], "title": {"x": 1}},
    ["not", "an", "object"],
    "spec",
])
def test_digesting_a_session_of_any_shape_never_raises(spec):
    body = {"metadata": {"name": "s", "namespace": NAMESPACE, "annotations": ["odd"]}, "spec": spec,
            "status": {"conditions": deep(3000)}}
    status = parse_status(body["status"], body["metadata"])
    settings = LifecycleSettings(provider="pod")
    digested = session_input(body, settings, [], False, status)
    assert status is None
    assert digested.desired_state in (c.STATE_RUNNING, c.STATE_STOPPED)
    if spec_problems(spec):
        assert digested.settings is None and digested.config_problems


def test_a_free_form_volume_source_too_deep_is_a_config_problem_not_a_recursion_error():
    body = {"metadata": {"name": "s", "namespace": NAMESPACE},
            "spec": {"agent": {"image": IMAGE}, "podTemplate": {"volumes": [{"name": "v", "emptyDir": deep(900)}]}}}
    with pytest.raises(ConfigInvalid) as raised:
        resolve_config(body, {})
    assert [str(p) for p in raised.value.problems] == [
        f'spec.podTemplate: nested more than {MAX_FREE_FORM_DEPTH} levels deep (set by AgentSession "s")']


def test_a_session_with_a_900_level_meta_gets_a_status_saying_why(api, operator):
    api.create(c.SESSION_PLURAL, session("deep", agent={"image": IMAGE}, meta={"nested": deep(900)}))

    def config_invalid(obj):
        cond = condition(obj, c.COND_CONFIG_VALID)
        return cond is not None and cond["status"] == "False" and "spec.meta: nested more than" in cond["message"]

    obj = wait_session(api, "deep", config_invalid)
    assert f"nested more than {MAX_FREE_FORM_DEPTH} levels deep" in condition(obj, c.COND_CONFIG_VALID)["message"]


# --- admission, once more on both backends -----------------------------------------------------

@pytest.mark.parametrize("agent, message", [
    ({"image": IMAGE, "env": [{"name": "A\nB", "value": "1"}]},
     'spec.agent.env[0].name: Invalid value: "A\\nB": spec.agent.env[0].name in body should match'),
    ({"image": IMAGE, "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}},
     "spec.agent.resources.requests: Invalid value: a request must be less than or equal to the limit"),
    ({"image": IMAGE, "resources": {"limits": {"memory": "-1Gi"}}},
     'spec.agent.resources.limits[memory]: Invalid value: "-1Gi": must not be negative'),
    ({"image": IMAGE, "volumeMounts": [{"name": "v", "mountPath": "/v", "subPath": "../.."}]},
     "spec.agent.volumeMounts[0].subPath: Invalid value: \"../..\": must not contain '..'"),
    ({"image": "ghcr.io/acme/agent:1\n"},
     'spec.agent.image: Invalid value: "ghcr.io/acme/agent:1\\n": spec.agent.image in body should match'),
])
def test_admission_refuses_each_reproduced_value(api, agent, message):
    with pytest.raises(Exception) as raised:
        api.create(c.SESSION_PLURAL, session("bad", agent=agent))
    assert raised.value.code == 422
    assert message in raised.value.message


@pytest.mark.parametrize("api", ["real"], indirect=True)
def test_a_session_nested_deeper_than_pythons_decoder_does_not_blind_the_operator(api, operator):
    # The API server accepts 5,000 levels inside `spec.meta` (a free-form field: its decoder goes
    # to 10,000); Python's JSON decoder stops near 1,000. Every list and watch of sessions carries
    # such a body, so it once made every one of them fail: no session was reconciled any more.
    # The operator's informers cut what is too deep (`k8s.decoding.decode`): the neighbours are
    # reconciled, and the deep session is told why it is refused. (Real server only: the embedded
    # one keeps objects as Python values, which cannot be nested this deep.)
    from agent_sessions.k8s.decoding import decode  # noqa: PLC0415
    from support.cluster.rest import ApiError  # noqa: PLC0415

    levels = 5000
    body = (b'{"apiVersion":"%s","kind":"%s","metadata":{"name":"abyss","namespace":"default"},'
            b'"spec":{"agent":{"image":"%s"},"meta":' % (c.API_VERSION.encode(), c.SESSION_KIND.encode(), IMAGE.encode())
            + b'{"a":' * levels + b"{}" + b"}" * levels + b"}}")
    path = f"/apis/{c.GROUP}/{c.VERSION}/namespaces/default/{c.SESSION_PLURAL}"
    api.client.request("POST", path, body=body, raw=True)  # (the answer is as deep: not decoded here)
    try:
        api.create(c.SESSION_PLURAL, session("neighbour"))
        wait_session(api, "neighbour", lambda o: condition(o, c.COND_READY) is not None
                     and condition(o, c.COND_READY)["status"] == "True")

        def refused() -> bool:
            obj = decode(api.client.request("GET", f"{path}/abyss", raw=True).encode())
            cond = next((x for x in (obj.get("status") or {}).get("conditions") or ()
                         if x["type"] == c.COND_CONFIG_VALID), None)
            return cond is not None and cond["status"] == "False" and "spec.meta: nested more than" in cond["message"]

        api.wait_for(refused, timeout=30)
    finally:  # the harness's clean-up lists sessions with Python's decoder: the deep one goes first
        api.client.request("DELETE", f"{path}/abyss", raw=True)

        def gone() -> bool:
            try:
                api.client.request("GET", f"{path}/abyss", raw=True)
            except ApiError as error:
                return error.code == 404
            return False

        api.wait_for(gone, timeout=30)
