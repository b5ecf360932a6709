"""`GET /v1/providers`: the providers the installation offers, with what each provider itself says
it supports; the list comes from `--provider` (default: what `agent-sessions run` offers)."""

from __future__ import annotations

import argparse

import pytest

from agent_sessions.gateway.cli import add_gateway_command, options_from_args
from agent_sessions.providers.http.constants import CONTRACT_CAPABILITIES
from agent_sessions.providers.pod.provider import PodProvider
from agent_sessions.providers.tmux import TmuxProvider

from .conftest import ALICE, BOB


def parse(*argv: str) -> argparse.Namespace:
    root = argparse.ArgumentParser(prog="agent-sessions")
    add_gateway_command(root.add_subparsers(dest="command"))
    return root.parse_args(["gateway", *argv])


async def test_default_providers_are_pod_and_http_with_their_capabilities(gateway, http):
    async with http.get(f"{gateway}/v1/providers", headers=ALICE) as resp:
        assert resp.status == 200, await resp.text()
        body = await resp.json()

    assert body == {"items": [
        {"name": "pod", "variesByPlatform": False, "capabilities": {
            "streaming": True, "history": True, "logs": True, "resume": True, "cancel": True,
            "resourceLimits": True}},
        {"name": "http", "variesByPlatform": True, "capabilities": {
            "streaming": True, "history": True, "logs": True, "resume": False, "cancel": True,
            "resourceLimits": False}},
    ]}
    # Said by the providers themselves, in the camelCase of status.capabilities.
    assert body["items"][0]["capabilities"] == PodProvider(core_api=object()).capabilities().model_dump(by_alias=True)
    assert body["items"][1]["capabilities"] == CONTRACT_CAPABILITIES.model_dump(by_alias=True)


async def test_providers_are_those_the_gateway_is_told_the_operator_offers(start_gateway, http, tmp_path):
    gateway = (await start_gateway(providers=("pod", "http", "tmux"))).url
    async with http.get(f"{gateway}/v1/providers", headers=BOB) as resp:  # any authenticated caller
        assert resp.status == 200
        items = (await resp.json())["items"]
    assert [item["name"] for item in items] == ["pod", "http", "tmux"]
    tmux = TmuxProvider(workspace_root=tmp_path).capabilities().model_dump(by_alias=True)
    assert items[2] == {"name": "tmux", "capabilities": tmux, "variesByPlatform": False}
    assert tmux["resourceLimits"] is False and tmux["resume"] is True


async def test_providers_need_an_authenticated_caller(gateway, http):
    async with http.get(f"{gateway}/v1/providers") as resp:
        assert resp.status == 401
        assert (await resp.json())["code"] == "unauthorized"
    async with http.get(f"{gateway}/v1/providers", headers={"Authorization": "Bearer nobody"}) as resp:
        assert resp.status == 401


def test_provider_flag_sets_the_providers_in_order_without_repeats():
    assert options_from_args(parse()).providers == ("pod", "http")
    assert options_from_args(parse("--provider", "tmux", "--provider", "pod", "--provider", "tmux")).providers == (
        "tmux", "pod")


def test_an_unknown_provider_is_refused(capsys):
    with pytest.raises(SystemExit):
        parse("--provider", "docker")
    assert "invalid choice" in capsys.readouterr().err


def test_status_streams_per_caller_flag():
    assert options_from_args(parse()).status_streams_per_caller == 10
    assert options_from_args(parse("--status-streams-per-caller", "0")).status_streams_per_caller == 0
