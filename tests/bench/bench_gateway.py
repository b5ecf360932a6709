"""Gateway cost figures, measured with real processes (not a timed unit test).

    .venv/bin/python tests/bench/bench_gateway.py [--messages 200] [--streams 1000 2000]

Prints:
1. per-message latency of a sync message sent directly to a session's runtime bridge and the
   same message through the gateway (TokenReview + SubjectAccessReview, cached), p50/p99, and
   the gateway's overhead;
2. resident memory of one gateway process holding N concurrent SSE `/events` streams, for
   several N: the cost per stream, to show memory stays bounded (linear, small per stream).

Everything runs on loopback: the strict embedded API in this process, the bridge with the demo
agent and the gateway as child processes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from gateway.conftest import GATEWAY_RBAC, TOKENS, USER_RBAC  # noqa: E402

from agent_sessions.api import constants as c  # noqa: E402
from agent_sessions.dev.authorization import RBACAuthorizer  # noqa: E402
from agent_sessions.dev.strict_api import running_api  # noqa: E402

CRDS = [yaml.safe_load((ROOT / "crds" / n).read_text()) for n in ("agentsessions.yaml", "sessiontemplates.yaml")]
ALICE = {"Authorization": "Bearer alice-token"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(url)
            await asyncio.sleep(0.1)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def latency(bridge: str, gateway: str, n: int) -> None:
    direct, through = [], []
    async with aiohttp.ClientSession() as http:
        for i in range(n + 10):  # 10 warm-up rounds, alternating, so both see the same conditions
            for target, sink, headers in ((f"{bridge}/v1/messages", direct, {}),
                                          (f"{gateway}/v1/namespaces/team-a/sessions/bench/messages", through, ALICE)):
                started = time.perf_counter()
                async with http.post(target, json={"text": f"message {i}"}, headers=headers) as response:
                    assert response.status == 200, await response.text()
                    await response.read()
                if i >= 10:
                    sink.append((time.perf_counter() - started) * 1000)
    d50, d99 = percentile(direct, 0.5), percentile(direct, 0.99)
    g50, g99 = percentile(through, 0.5), percentile(through, 0.99)
    print(f"\n1. Sync message latency over {n} messages (demo agent, no chunk delay):")
    print(f"   direct to the bridge : p50 {d50:6.2f} ms   p99 {d99:6.2f} ms")
    print(f"   through the gateway  : p50 {g50:6.2f} ms   p99 {g99:6.2f} ms")
    print(f"   gateway overhead     : p50 {g50 - d50:6.2f} ms   p99 {g99 - d99:6.2f} ms   "
          f"(mean {statistics.mean(through) - statistics.mean(direct):.2f} ms)")


async def streams(gateway: str, gateway_pid: int, counts: list[int]) -> None:
    print("\n2. Concurrent SSE /events streams held by one gateway process:")
    baseline = rss_kib(gateway_pid)
    print(f"   idle gateway RSS: {baseline / 1024:.1f} MiB")
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, headers=ALICE, timeout=aiohttp.ClientTimeout(total=None)) as http:
        open_responses: list[aiohttp.ClientResponse] = []
        url = f"{gateway}/v1/namespaces/team-a/sessions/bench/events"
        for count in counts:
            async def one() -> aiohttp.ClientResponse:
                response = await http.get(url, params={"after_seq": "1000000"})
                assert response.status == 200, response.status
                return response

            while len(open_responses) < count:
                batch = min(200, count - len(open_responses))
                open_responses += await asyncio.gather(*(one() for _ in range(batch)))
            await asyncio.sleep(1.0)  # let the gateway settle (pollers, buffers)
            held = rss_kib(gateway_pid)
            per = (held - baseline) / count
            print(f"   {count:5d} streams: RSS {held / 1024:6.1f} MiB  (+{(held - baseline) / 1024:.1f} MiB, "
                  f"{per:.1f} KiB per stream)")
        for response in open_responses:
            response.close()


async def main_async(args: argparse.Namespace) -> None:
    tokens = dict(TOKENS)
    authorizer = RBACAuthorizer.from_manifests([*GATEWAY_RBAC, *USER_RBAC])
    with running_api(crds=CRDS, tokens=tokens, authorizer=authorizer) as api, tempfile.TemporaryDirectory() as tmp:
        api.create("namespaces", {"metadata": {"name": "team-a"}})
        bridge_port, gateway_port = free_port(), free_port()
        env = {**os.environ, "DEMO_AGENT_CHUNK_DELAY": "0"}
        bridge = subprocess.Popen(
            [sys.executable, "-m", "agent_sessions.runtime", "--host", "127.0.0.1", "--port", str(bridge_port),
             "--workspace", tmp, "--", sys.executable, "-m", "agent_sessions.runtime.demo_agent"],
            env=env, stderr=subprocess.DEVNULL,
        )
        kubeconfig = api.write_kubeconfig(Path(tmp) / "kubeconfig", token="gateway-token")
        gateway = subprocess.Popen(
            [sys.executable, "-m", "agent_sessions.cli.main", "gateway", "--host", "127.0.0.1",
             "--port", str(gateway_port), "--kubeconfig", str(kubeconfig), "--log-level", "WARNING"],
            stderr=subprocess.DEVNULL,
        )
        try:
            bridge_url, gateway_url = f"http://127.0.0.1:{bridge_port}", f"http://127.0.0.1:{gateway_port}"
            await wait_http(f"{bridge_url}/healthz")
            await wait_http(f"{gateway_url}/healthz")
            api.create(c.SESSION_PLURAL, {"apiVersion": c.API_VERSION, "kind": c.SESSION_KIND,
                                          "metadata": {"name": "bench", "namespace": "team-a"},
                                          "spec": {"agent": {"image": "local"}}})
            api.patch_status(c.SESSION_PLURAL, "team-a", "bench",
                             {"phase": "Running", "provider": {"type": "pod", "id": "bench", "endpoint": bridge_url}})
            await latency(bridge_url, gateway_url, args.messages)
            await streams(gateway_url, gateway.pid, args.streams)
        finally:
            for process in (gateway, bridge):
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--streams", type=int, nargs="+", default=[250, 1000, 2000])
    args = parser.parse_args()
    print(f"agent-session-operator gateway bench, {time.strftime('%Y-%m-%dT%H:%M:%S')}, loopback")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
