"""`agent_sessions.k8s.client.make_api_client`: no per-request lookups of the environment."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from aiohttp import web

from agent_sessions.k8s.client import make_api_client

pytestmark = pytest.mark.unit


def kubeconfig(path: Path, server: str) -> str:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": "t0ken"}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
    }))
    return str(path)


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """`app` on a free loopback port: its URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    finally:
        await runner.cleanup()


async def test_requests_look_nothing_up_in_a_thread(tmp_path, monkeypatch):
    # With the environment trusted, aiohttp reads the proxy variables and ~/.netrc in the default
    # executor on every request: the operator spent a fifth of its CPU there in a burst.
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    async def namespace(request: web.Request) -> web.Response:
        return web.json_response({"apiVersion": "v1", "kind": "Namespace",
                                  "metadata": {"name": request.match_info["name"]}})

    app = web.Application()
    app.router.add_get("/api/v1/namespaces/{name}", namespace)
    loop = asyncio.get_running_loop()
    offloaded: list[object] = []
    original = loop.run_in_executor

    def counting(executor, func, *args):
        offloaded.append(func)
        return original(executor, func, *args)

    monkeypatch.setattr(loop, "run_in_executor", counting)
    async with serving(app) as url:
        api = await make_api_client(kubeconfig(tmp_path / "config", url))
        try:
            from kubernetes_asyncio.client import CoreV1Api

            core = CoreV1Api(api)
            for _ in range(5):
                namespace = await core.read_namespace("default", _preload_content=False)
                assert (await namespace.json())["metadata"]["name"] == "default"
            assert offloaded == []
        finally:
            await api.close()


@pytest.mark.parametrize(("environment", "expected"), [
    ({}, None),
    ({"HTTPS_PROXY": "http://proxy.example:3128"}, "http://proxy.example:3128"),
    ({"HTTPS_PROXY": "http://proxy.example:3128", "NO_PROXY": "10.0.0.1"}, None),
    ({"HTTP_PROXY": "http://proxy.example:3128"}, None),  # an https server: HTTPS_PROXY only
])
async def test_the_environments_proxy_is_looked_up_once_as_kubectl_does(tmp_path, monkeypatch, environment, expected):
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "https_proxy", "http_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    api = await make_api_client(kubeconfig(tmp_path / "config", "https://10.0.0.1:6443"))
    try:
        assert api.configuration.proxy == expected
    finally:
        await api.close()


async def test_call_json_answers_the_json_and_raises_what_the_client_would(tmp_path):
    from kubernetes_asyncio.client import CoreV1Api
    from kubernetes_asyncio.client.exceptions import ApiException

    from agent_sessions.k8s.client import call_json

    async def create(request: web.Request) -> web.Response:
        body = await request.json()
        if body["metadata"]["name"] == "taken":
            return web.json_response({"kind": "Status", "message": 'pods "taken" already exists', "code": 409},
                                     status=409, headers={"Retry-After": "3"})
        return web.json_response({**body, "status": {"phase": "Pending"}}, status=201)

    app = web.Application()
    app.router.add_post("/api/v1/namespaces/{namespace}/pods", create)
    async with serving(app) as url:
        api = await make_api_client(kubeconfig(tmp_path / "config", url))
        try:
            core = CoreV1Api(api)
            pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": []}}
            created = await call_json(core.create_namespaced_pod, "default", pod)
            assert created == {**pod, "status": {"phase": "Pending"}}  # a dict, not the client's V1Pod
            with pytest.raises(ApiException) as refused:
                await call_json(core.create_namespaced_pod, "default", {**pod, "metadata": {"name": "taken"}})
            assert refused.value.status == 409 and "already exists" in refused.value.body
            assert refused.value.headers["Retry-After"] == "3"
        finally:
            await api.close()


async def test_debug_logging_never_prints_a_response_body(tmp_path, caplog):
    # kubernetes_asyncio logs each response body at DEBUG: a Secret's data, a TokenReview's token.
    async def secret(request: web.Request) -> web.Response:
        return web.json_response({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "key"},
                                  "data": {"key": "c2VjcmV0LXZhbHVlLTQyNDI="}})

    app = web.Application()
    app.router.add_get("/api/v1/namespaces/{namespace}/secrets/{name}", secret)
    caplog.set_level("DEBUG")  # the root logger, as --log-level DEBUG sets it
    async with serving(app) as url:
        api = await make_api_client(kubeconfig(tmp_path / "config", url))
        try:
            from kubernetes_asyncio.client import CoreV1Api

            read = await CoreV1Api(api).read_namespaced_secret("key", "default")
            assert read.data == {"key": "c2VjcmV0LXZhbHVlLTQyNDI="}
        finally:
            await api.close()
    assert not [r for r in caplog.records if "c2VjcmV0LXZhbHVlLTQyNDI" in r.getMessage()]
