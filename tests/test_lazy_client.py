"""`agent_sessions.lazy_client`: the client package imported lazily is the same package, only smaller.

Each check runs in a fresh interpreter: what a process has imported is the point."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.unit


def run(code: str) -> dict:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


NAMES = """
    import json, kubernetes_asyncio.client as client, kubernetes_asyncio.client.models as models
    import kubernetes_asyncio.client.api as api
    print(json.dumps({
        package.__name__: {"version": getattr(package, "__version__", None), "all": sorted(package.__all__),
                           "names": {name: f"{getattr(package, name).__module__}.{getattr(package, name).__qualname__}"
                                     for name in package.__all__}}
        for package in (client, models, api)}))
"""


def test_every_name_the_package_exports_is_the_same_class_imported_lazily():
    eager = run(NAMES)
    lazy = run("import agent_sessions\n" + textwrap.dedent(NAMES))
    assert set(lazy) == set(eager) == {"kubernetes_asyncio.client", "kubernetes_asyncio.client.models",
                                       "kubernetes_asyncio.client.api"}
    for package in eager:
        assert lazy[package]["all"] == eager[package]["all"] and len(eager[package]["all"]) > 50
        assert lazy[package]["names"] == eager[package]["names"]
        assert lazy[package]["version"] == eager[package]["version"]


def test_the_operator_imports_only_the_models_it_uses():
    imported = run("""
        import json, sys, resource
        import agent_sessions.handlers.operator, agent_sessions.providers.pod.provider, agent_sessions.cli.main
        import kopf
        from kubernetes_asyncio import client
        client.CoreV1Api, client.V1Pod  # used: imported now
        print(json.dumps({"models": len([m for m in sys.modules if m.startswith("kubernetes_asyncio.client.models.")]),
                          "lazy": type(sys.modules["kubernetes_asyncio.client"].__spec__.loader).__name__}))
    """)
    assert imported["lazy"] == "_LazyPackageLoader"
    assert imported["models"] < 20  # of ~770; eagerly, every one


def test_responses_are_still_deserialised_into_models_with_their_nested_models():
    result = run("""
        import asyncio, json
        import agent_sessions
        from kubernetes_asyncio.client import ApiClient
        class Response:
            data = json.dumps({"metadata": {"name": "p", "ownerReferences": [{"apiVersion": "v1", "kind": "X",
                               "name": "x", "uid": "u"}]}, "spec": {"containers": [{"name": "c"}]}}).encode()
        async def main():
            api = ApiClient()
            try:
                return api.deserialize(Response(), "V1Pod")
            finally:
                await api.close()
        pod = asyncio.run(main())
        print(json.dumps({"type": type(pod).__name__, "spec": type(pod.spec).__name__,
                          "owner": type(pod.metadata.owner_references[0]).__name__, "name": pod.spec.containers[0].name}))
    """)
    assert result == {"type": "V1Pod", "spec": "V1PodSpec", "owner": "V1OwnerReference", "name": "c"}


def test_an_unknown_name_is_an_attribute_error_as_before():
    result = run("""
        import json
        import agent_sessions
        import kubernetes_asyncio.client as client
        try:
            client.NoSuchThing
        except AttributeError as error:
            print(json.dumps({"error": str(error)}))
    """)
    assert result == {"error": "module 'kubernetes_asyncio.client' has no attribute 'NoSuchThing'"}
