"""Issue 12, item 2: a session waiting for a Secret or ConfigMap it names is reconciled as soon as
the object appears or changes — seconds, not its next backoff retry (which reaches 5 minutes).

On both backends (the embedded API and a real kube-apiserver, where the operator runs with the
chart's ClusterRole), against the reference http platform. Each test first waits until the
session's next scheduled retry is more than `LATENCY` away, so a reconcile within `LATENCY` of the
change can only come from the watch (`handlers.dependencies`); the measured time is printed
(`pytest -s`).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent_sessions.api import constants as c
from agent_sessions.dev.provider_server import ProviderServerThread, running_provider_server
from support.sessions import session, template
from support.waits import condition, wait_session, wait_until

NAMESPACE = "default"
TOKEN = "platform-token-3f9a"
LATENCY = 2.0
"""Longest time from the change of an object to the reconcile of a session naming it."""
QUIET = 3.0
"""The session's next scheduled retry must be at least this far away when the object changes."""


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[ProviderServerThread]:
    with running_provider_server(tokens=[TOKEN], workdir=tmp_path / "platform") as server:
        yield server


def secret_body(name: str, **values: str) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NAMESPACE},
            "type": "Opaque", "data": {k: base64.b64encode(v.encode()).decode() for k, v in values.items()}}


def config_map_body(name: str, **values: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": NAMESPACE}, "data": values}


def http_block(url: str, secret: str) -> dict:
    return {"url": url, "credentialsSecretRef": {"name": secret, "key": "token"}, "maxRetries": 0}


def waiting_for_secret(obj: dict | None) -> bool:
    available = condition(obj, c.COND_PROVIDER_AVAILABLE) or {}
    return available.get("status") == "False" and "does not exist" in (available.get("message") or "")


def on_platform(obj: dict | None) -> bool:
    return bool((((obj or {}).get("status") or {}).get("provider") or {}).get("id"))


def next_retry_in(operator: Any, key: tuple[str, str]) -> float | None:
    """Seconds until the scheduler's timer reconciles `key` again (None: no timer)."""
    timer = operator.runtime.scheduler._timers.get(key)  # the scheduler keeps no public view of it
    return None if timer is None else timer.when() - time.monotonic()


def wait_quiet(operator: Any, key: tuple[str, str]) -> None:
    """Until no reconcile of `key` is scheduled within `QUIET` seconds (backoff has grown)."""
    wait_until(lambda: (next_retry_in(operator, key) or 0.0) > QUIET and not operator.runtime.scheduler.busy,
               timeout=30, what=f"the retry of {key} scheduled more than {QUIET}s away")


def reconciles(operator: Any, key: tuple[str, str]) -> int:
    return operator.runtime.scheduler.completed[key]


def test_a_session_waiting_for_a_missing_secret_runs_within_2s_of_its_creation(api, platform, start_operator):
    operator = start_operator(http_platforms=(platform.url,))
    api.create(c.SESSION_PLURAL, session("cloud", provider="http", http=http_block(platform.url, "agent-platform")))
    wait_session(api, "cloud", waiting_for_secret)
    wait_quiet(operator, (NAMESPACE, "cloud"))

    created = time.monotonic()
    api.create("secrets", secret_body("agent-platform", token=TOKEN))
    wait_session(api, "cloud", on_platform)
    elapsed = time.monotonic() - created
    print(f"\n[{type(api).__name__}] Secret created -> session on its platform: {elapsed:.3f}s")
    assert elapsed <= LATENCY
    assert platform.stats()["creates"] == 1


def test_a_secret_named_by_the_sessions_template_chain_is_watched_too(api, platform, start_operator):
    operator = start_operator(http_platforms=(platform.url,))
    api.create(c.TEMPLATE_PLURAL, template("platform", provider="http", http=http_block(platform.url, "team-token")))
    api.create(c.TEMPLATE_PLURAL, template("team", extends="platform", title="Team agent"))
    api.create(c.SESSION_PLURAL, session("templated", templateRef={"name": "team"}))
    wait_session(api, "templated", waiting_for_secret)
    wait_quiet(operator, (NAMESPACE, "templated"))

    created = time.monotonic()
    api.create("secrets", secret_body("team-token", token=TOKEN))
    wait_session(api, "templated", on_platform)
    elapsed = time.monotonic() - created
    print(f"\n[{type(api).__name__}] template-named Secret created -> session on its platform: {elapsed:.3f}s")
    assert elapsed <= LATENCY


def test_a_configmap_change_reconciles_exactly_the_sessions_naming_it(api, start_operator):
    # Stopped sessions: nothing else reconciles them for RESYNC_SECONDS, so each counted
    # reconcile is the watch's. (The kubelet, not the operator, reads a pod's ConfigMaps.)
    operator = start_operator()
    api.create("configmaps", config_map_body("team-settings", MODE="a"))
    env_from = {"envFrom": [{"configMapRef": {"name": "team-settings"}}]}
    api.create(c.SESSION_PLURAL, session("naming", state="Stopped", agent={"image": "agent:1", "command": ["agent"], **env_from}))
    api.create(c.SESSION_PLURAL, session("other", state="Stopped"))
    keys = [(NAMESPACE, "naming"), (NAMESPACE, "other")]
    for key in keys:
        wait_session(api, key[1], lambda o: (o or {}).get("status", {}).get("phase") == c.PHASE_STOPPED)
        wait_quiet(operator, key)
    before = {key: reconciles(operator, key) for key in keys}

    changed = time.monotonic()
    api.patch("configmaps", NAMESPACE, "team-settings", {"data": {"MODE": "b"}})
    wait_until(lambda: reconciles(operator, keys[0]) > before[keys[0]], timeout=10, what="a reconcile of 'naming'")
    elapsed = time.monotonic() - changed
    print(f"\n[{type(api).__name__}] ConfigMap changed -> session reconciled: {elapsed:.3f}s")
    assert elapsed <= LATENCY

    seen = reconciles(operator, keys[0])
    api.delete("configmaps", NAMESPACE, "team-settings")
    wait_until(lambda: reconciles(operator, keys[0]) > seen, timeout=LATENCY, what="a reconcile after the deletion")
    assert reconciles(operator, keys[1]) == before[keys[1]]  # names no ConfigMap: never triggered


def test_an_http_session_gets_the_value_of_a_configmap_it_names_with_the_charts_role(api, platform, start_operator):
    # A platform runs the agent itself: the operator reads the ConfigMap and sends its value (on
    # the real API server, with exactly the ClusterRole the chart renders for an installation
    # with an http platform: `get configmaps` is in it).
    start_operator(http_platforms=(platform.url,))
    api.create("secrets", secret_body("agent-platform", token=TOKEN))
    api.create("configmaps", config_map_body("team-settings", MODE="fast"))
    agent = {"image": "agent:1", "command": ["agent"],
             "env": [{"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "team-settings", "key": "MODE"}}}]}
    api.create(c.SESSION_PLURAL, session("configured", provider="http", agent=agent,
                                         http=http_block(platform.url, "agent-platform")))
    obj = wait_session(api, "configured", lambda o: on_platform(o) or waiting_for_secret(o) or (
        (condition(o, c.COND_PROVIDER_AVAILABLE) or {}).get("status") == "False"))
    assert on_platform(obj), (condition(obj, c.COND_PROVIDER_AVAILABLE), condition(obj, c.COND_CONFIG_VALID))
    record = platform.server.platform._record(obj["status"]["provider"]["id"])  # what the platform was sent
    assert {"name": "MODE", "value": "fast"} in record.body["agent"]["env"]
