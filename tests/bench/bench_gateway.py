"""Gateway cost figures, measured with real processes (not a timed unit test).

    .venv/bin/python tests/bench/bench_gateway.py [--messages 200] [--lines 400] [--polled-lines 200]
                                                  [--streams 250 1000 5000]

Prints:
1. per-message latency of a sync message sent directly to a session's runtime bridge and the
   same message through the gateway (TokenReview + SubjectAccessReview, cached), p50/p99, and
   the gateway's overhead; the same through a baseline gateway allowed only `get agentsessions`
   (it cannot watch, so it reads the session for every message, as gateways did before the
   serving index), taken in turn with the others; and the Kubernetes API requests each made;
2. SSE event latency: a second bridge runs `clock_agent.py` (plain lines), which streams lines
   stamped with the wall clock the moment it writes them; the message that starts it is sent
   straight to the bridge (a turn the gateway has no part in, like one started through another
   replica), and each line is timed from its stamp to an SSE `/events` client of the gateway
   reading it: agent -> bridge -> gateway -> client, p50/p99 over every frame. Then the same
   through an endpoint that ignores the long poll (a proxy dropping `wait` and `longPoll`, as an
   http platform's own API might), so the gateway polls it every `POLL_SECONDS`: the baseline,
   what every session had before push-based tails;
3. resident memory of one gateway process holding N concurrent SSE `/events` streams, for
   several N: the cost per stream, to show memory stays bounded (linear, small per stream); with
   the most streams held, the event latency of 2. on another session, and one turn fanned out to
   all the streams, timed until the last one has its `done`.

Everything runs on loopback: the Kubernetes API — a real kube-apiserver with etcd when
KUBE_ASSETS names the control-plane binaries (tests/support/cluster; requests counted from its
audit log), else the strict embedded API in this process —, the bridge with the demo agent and
the gateways as child processes (without a rate limit: this measures capacity, not the limiter).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import yaml
from aiohttp import web

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from gateway import real_gateway  # noqa: E402
from gateway.conftest import GATEWAY_GET_ONLY_RULES, GATEWAY_RBAC, GATEWAY_USER, TOKENS, USER_RBAC  # noqa: E402
from support.cluster.audit import AuditLog  # noqa: E402
from support.cluster.control_plane import ControlPlane  # noqa: E402

from agent_sessions.api import constants as c  # noqa: E402
from agent_sessions.dev.authorization import RBACAuthorizer  # noqa: E402
from agent_sessions.dev.strict_api import running_api  # noqa: E402

CRDS = [yaml.safe_load((ROOT / "crds" / n).read_text()) for n in ("agentsessions.yaml", "sessiontemplates.yaml")]
CALLER: dict[str, str] = {}
"""The caller's `Authorization` header (alice on the embedded API, tester on a real one)."""
POLL_SECONDS = 1.0
"""The gateway's --history-poll-seconds (its default): the interval of the polling baseline."""


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


GATEWAYS = ("gateway", "get-only")
"""The two gateway identities: the gateway's own rules, and GATEWAY_GET_ONLY_RULES."""


class EmbeddedCluster:
    """The strict embedded API in this process, with the test suite's tokens and RBAC."""

    label = "the strict embedded Kubernetes API (in this process)"
    users = {"gateway": GATEWAY_USER, "get-only": "system:serviceaccount:agent-sessions:gateway-get-only"}

    def __init__(self, tmp: Path, stack: contextlib.ExitStack) -> None:
        tokens = {**TOKENS, "gateway-get-only-token": (self.users["get-only"], ["system:serviceaccounts"])}
        get_only = [
            {**GATEWAY_RBAC[0], "metadata": {"name": "gateway-get-only"}, "rules": GATEWAY_GET_ONLY_RULES},
            {**GATEWAY_RBAC[1], "metadata": {"name": "gateway-get-only"},
             "roleRef": {**GATEWAY_RBAC[1]["roleRef"], "name": "gateway-get-only"},
             "subjects": [{"kind": "ServiceAccount", "name": "gateway-get-only", "namespace": "agent-sessions"}]}]
        authorizer = RBACAuthorizer.from_manifests([*GATEWAY_RBAC, *get_only, *USER_RBAC])
        self.api = stack.enter_context(running_api(crds=CRDS, tokens=tokens, authorizer=authorizer))
        self.api.create("namespaces", {"metadata": {"name": "team-a"}})
        self.tmp = tmp
        self.caller = {"Authorization": "Bearer alice-token"}

    def kubeconfig(self, which: str) -> Path:
        token = {"gateway": "gateway-token", "get-only": "gateway-get-only-token"}[which]
        return self.api.write_kubeconfig(self.tmp / f"{which}.kubeconfig", token=token)

    def running_session(self, name: str, endpoint: str) -> None:
        self.api.create(c.SESSION_PLURAL, {"apiVersion": c.API_VERSION, "kind": c.SESSION_KIND,
                                           "metadata": {"name": name, "namespace": "team-a"},
                                           "spec": {"agent": {"image": "local"}}})
        self.api.patch_status(c.SESSION_PLURAL, "team-a", name,
                              {"phase": "Running", "provider": {"type": "pod", "id": name, "endpoint": endpoint}})

    def reset(self) -> None:
        self.api.reset_requests()

    def requests(self, which: str) -> Counter[str]:
        return Counter(f"{r.method} {r.resource or r.path}{' watch' if r.watch else ''}"
                       f"{f' ({r.status})' if r.status >= 400 else ''}"
                       for r in list(self.api.requests) if r.user == self.users[which])


class RealCluster(EmbeddedCluster):
    """A real kube-apiserver with etcd (KUBE_ASSETS, tests/support/cluster): the gateways are the
    control plane's `operator` and `gateway` users, the caller is `tester`; requests are counted
    from the API server's audit log."""

    def __init__(self, tmp: Path, stack: contextlib.ExitStack, assets: Path) -> None:
        self.plane = stack.enter_context(ControlPlane(assets, tmp / "plane"))
        self.label = f"a real kube-apiserver with etcd ({assets})"
        self.users = {"gateway": self.plane.users["operator"].name, "get-only": self.plane.users["gateway"].name}
        real_gateway.prepare(self.plane, "team-a", ["get", "list", "watch"], send=True)
        self.admin = self.plane.client("admin")
        stack.callback(self.admin.close)
        rbac = "rbac.authorization.k8s.io/v1"
        self.admin.create("clusterroles", {"apiVersion": rbac, "kind": "ClusterRole",
                                           "metadata": {"name": "bench-gateway-get-only"}, "rules": GATEWAY_GET_ONLY_RULES})
        self.admin.create("clusterrolebindings", {
            "apiVersion": rbac, "kind": "ClusterRoleBinding", "metadata": {"name": "bench-gateway-get-only"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "bench-gateway-get-only"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": self.users["get-only"]}]})
        self.audit = AuditLog(self.plane.audit_log)
        self.tmp = tmp
        self.caller = {"Authorization": f"Bearer {self.plane.tokens['tester']}"}

    def kubeconfig(self, which: str) -> Path:
        user = {"gateway": "operator", "get-only": "gateway"}[which]
        return self.plane.kubeconfig(self.tmp / f"{which}.kubeconfig", user)

    def running_session(self, name: str, endpoint: str) -> None:
        self.admin.create(c.SESSION_PLURAL, {"apiVersion": c.API_VERSION, "kind": c.SESSION_KIND,
                                             "metadata": {"name": name, "namespace": "team-a"},
                                             "spec": {"agent": {"image": "local"}}}, "team-a")
        self.admin.patch_status(c.SESSION_PLURAL, "team-a", name,
                                {"phase": "Running", "provider": {"type": "pod", "id": name, "endpoint": endpoint}})

    def reset(self) -> None:
        self.audit.reset()

    def requests(self, which: str) -> Counter[str]:
        time.sleep(1.0)  # the API server logs an event after answering
        return Counter(f"{r.verb} {r.target}{f' ({r.code})' if r.code >= 400 else ''}"
                       for r in self.audit.records(user=self.users[which]))


async def latency(cluster: EmbeddedCluster, bridge: str, gateways: dict[str, str], n: int) -> None:
    """`gateways`: label → URL; the first is the gateway as shipped, the others baselines."""
    direct: list[float] = []
    through: dict[str, list[float]] = {label: [] for label in gateways}
    targets = [(f"{bridge}/v1/messages", direct, {})] + [
        (f"{url}/v1/namespaces/team-a/sessions/bench/messages", through[label], CALLER)
        for label, url in gateways.items()]
    async with aiohttp.ClientSession() as http:
        for i in range(n + 10):  # 10 warm-up rounds, alternating, so all see the same conditions
            if i == 10:
                cluster.reset()
            for target, sink, headers in targets:
                started = time.perf_counter()
                async with http.post(target, json={"text": f"message {i}"}, headers=headers) as response:
                    assert response.status == 200, await response.text()
                    await response.read()
                if i >= 10:
                    sink.append((time.perf_counter() - started) * 1000)
    d50, d99 = percentile(direct, 0.5), percentile(direct, 0.99)
    print(f"\n1. Sync message latency over {n} messages (demo agent, no chunk delay), the targets taken in turn:")
    print(f"   direct to the bridge          : p50 {d50:6.2f} ms   p99 {d99:6.2f} ms")
    for label, values in through.items():
        g50, g99 = percentile(values, 0.5), percentile(values, 0.99)
        print(f"   {label:30}: p50 {g50:6.2f} ms   p99 {g99:6.2f} ms   overhead p50 {g50 - d50:5.2f} ms, "
              f"p99 {g99 - d99:5.2f} ms, mean {statistics.mean(values) - statistics.mean(direct):.2f} ms")
    for label, which in zip(gateways, GATEWAYS):
        made = cluster.requests(which)
        shown = ", ".join(f"{what} x{count}" for what, count in sorted(made.items())) or "none"
        print(f"   Kubernetes API requests, {label}: {sum(made.values())} "
              f"({sum(made.values()) / n:.2f} a message): {shown}")


def sessions_url(gateway: str, name: str) -> str:
    return f"{gateway}/v1/namespaces/team-a/sessions/{name}"


async def sse_seqs(response: aiohttp.ClientResponse) -> AsyncIterator[tuple[int, str, float]]:
    """(seq, event, perf_counter when its message was complete) of each SSE message with an id."""
    seq, event = None, ""
    async for raw in response.content:
        line = raw.rstrip(b"\r\n")
        if line.startswith(b"id: "):
            seq = int(line[4:])
        elif line.startswith(b"event: "):
            event = line[7:].decode()
        elif not line:
            if seq is not None:
                yield seq, event, time.perf_counter()
            seq, event = None, ""


async def ignoring_wait_proxy(bridge: str) -> tuple[web.AppRunner, str]:
    """A runtime endpoint that ignores the long poll: the bridge's API without `wait` in history
    requests and without `longPoll` in its answers (as an http platform's own API might be)."""
    http = aiohttp.ClientSession()

    async def forward(request: web.Request) -> web.Response:
        query = {k: v for k, v in request.query.items() if k != "wait"}
        async with http.get(f"{bridge}/{request.match_info['path']}", params=query) as upstream:
            body, status = await upstream.json(), upstream.status
        if isinstance(body, dict):
            body.pop("longPoll", None)
            if isinstance(body.get("capabilities"), dict):
                body["capabilities"].pop("longPoll", None)
        return web.json_response(body, status=status)

    async def close(app: web.Application) -> None:
        await http.close()

    app = web.Application()
    app.router.add_get("/{path:.*}", forward)
    app.on_cleanup.append(close)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


async def event_latency(bridge: str, gateway: str, session: str, lines: int, gaps: tuple[float, float]) -> list[float]:
    """ms from the clock agent writing each of `lines` lines (`gaps` seconds apart) to an SSE
    `/events` client of the gateway reading it, the line sent to the agent straight through the
    bridge (the gateway has no part in the turn)."""
    latencies: list[float] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as http:
        async with http.get(sessions_url(gateway, session) + "/events", headers=CALLER) as events:
            assert events.status == 200, await events.text()
            await asyncio.sleep(0.5)  # the feed is up (its first long poll, or poll, is out)
            async with http.post(f"{bridge}/v1/messages", params={"wait": "false"},
                                 json={"text": f"{lines} {gaps[0]} {gaps[1]}"}) as sent:
                assert sent.status == 202, await sent.text()
            async with asyncio.timeout(60 + lines * gaps[1]):
                async for raw in events.content:
                    if not raw.startswith(b"data: "):
                        continue
                    received = time.time()
                    data = json.loads(raw[6:])
                    if data.get("event") != "agent_message_chunk":
                        continue
                    n, stamp = data["update"]["content"]["text"].split()
                    latencies.append((received - float(stamp)) * 1000)
                    if int(n) == lines - 1:
                        break
    assert len(latencies) == lines, (len(latencies), lines)
    return latencies


async def latencies(bridge: str, gateway: str, lines: int, polled_lines: int) -> None:
    print("\n2. SSE event latency, from the agent writing a frame to a gateway /events client reading it")
    print("   (a turn sent straight to the bridge, the agent streaming a line every 5-25 ms):")
    pushed = await event_latency(bridge, gateway, "clock", lines, (0.005, 0.025))
    polled = await event_latency(bridge, gateway, "clock-polled", polled_lines, (0.005, 0.025))
    for label, values in (("push (long poll)", pushed), (f"polling every {POLL_SECONDS:g} s", polled)):
        print(f"   {label:21}: p50 {percentile(values, 0.5):7.2f} ms   p99 {percentile(values, 0.99):7.2f} ms   "
              f"max {max(values):7.2f} ms   ({len(values)} frames)")


async def streams(bridge: str, clock: str, gateway: str, gateway_pid: int, counts: list[int], lines: int) -> None:
    print("\n3. Concurrent SSE /events streams held by one gateway process:")
    baseline = rss_kib(gateway_pid)
    print(f"   idle gateway RSS: {baseline / 1024:.1f} MiB")
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, headers=CALLER, timeout=aiohttp.ClientTimeout(total=None)) as http:
        open_responses: list[aiohttp.ClientResponse] = []
        url = sessions_url(gateway, "bench") + "/events"
        for count in counts:
            async def one() -> aiohttp.ClientResponse:
                response = await http.get(url)  # tail only: nothing to replay
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

        async def until_done(response: aiohttp.ClientResponse) -> int:
            frames = 0
            async for _, event, _ in sse_seqs(response):
                frames += 1
                if event == "done":
                    return frames
            raise AssertionError("a stream ended before the turn's done")

        under_load = await event_latency(clock, gateway, "clock", lines, (0.005, 0.025))
        print(f"   SSE event latency (push) on another session meanwhile: p50 {percentile(under_load, 0.5):.2f} ms   "
              f"p99 {percentile(under_load, 0.99):.2f} ms   ({len(under_load)} frames)")
        readers = [asyncio.create_task(until_done(response)) for response in open_responses]
        started = time.perf_counter()
        async with http.post(f"{bridge}/v1/messages", json={"text": "to everyone"}) as response:
            assert response.status == 200, await response.text()
        delivered = await asyncio.wait_for(asyncio.gather(*readers), timeout=120)
        took = (time.perf_counter() - started) * 1000
        print(f"   one turn ({delivered[0]} frames) fanned out to all {len(open_responses)} streams: the last had "
              f"its done {took:.0f} ms after the message was sent; gateway RSS {rss_kib(gateway_pid) / 1024:.1f} MiB")
        for response in open_responses:
            response.close()


async def main_async(args: argparse.Namespace) -> None:
    assets = os.environ.get("KUBE_ASSETS")
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        cluster = RealCluster(tmp, stack, Path(assets)) if assets else EmbeddedCluster(tmp, stack)
        CALLER.update(cluster.caller)
        print(f"Kubernetes API: {cluster.label}")
        await run(args, cluster, tmp)


async def run(args: argparse.Namespace, cluster: EmbeddedCluster, tmp: Path) -> None:
    bridge_port, gateway_port, get_only_port = free_port(), free_port(), free_port()
    env = {**os.environ, "DEMO_AGENT_CHUNK_DELAY": "0"}
    bridge = subprocess.Popen(
        [sys.executable, "-m", "agent_sessions.runtime", "--host", "127.0.0.1", "--port", str(bridge_port),
         "--workspace", str(tmp), "--", sys.executable, "-m", "agent_sessions.runtime.demo_agent"],
        env=env, stderr=subprocess.DEVNULL,
    )
    clock_port = free_port()
    clock = subprocess.Popen(
        [sys.executable, "-m", "agent_sessions.runtime", "--host", "127.0.0.1", "--port", str(clock_port),
         "--workspace", str(tmp / "clock"), "--protocol", "stdio-lines", "--quiet-ms", "200",
         "--", sys.executable, str(Path(__file__).with_name("clock_agent.py"))],
        stderr=subprocess.DEVNULL,
    )

    def start_gateway(port: int, which: str) -> subprocess.Popen:
        kubeconfig = cluster.kubeconfig(which)
        return subprocess.Popen(
            [sys.executable, "-m", "agent_sessions.cli.main", "gateway", "--host", "127.0.0.1",
             "--port", str(port), "--kubeconfig", str(kubeconfig), "--log-level", "ERROR",
             "--rate-limit", "0", "--history-poll-seconds", str(POLL_SECONDS)],
            stderr=subprocess.DEVNULL,
        )

    gateway = start_gateway(gateway_port, "gateway")
    get_only = start_gateway(get_only_port, "get-only")
    proxy: web.AppRunner | None = None
    try:
        bridge_url, gateway_url = f"http://127.0.0.1:{bridge_port}", f"http://127.0.0.1:{gateway_port}"
        clock_url, get_only_url = f"http://127.0.0.1:{clock_port}", f"http://127.0.0.1:{get_only_port}"
        for url in (bridge_url, clock_url, gateway_url, get_only_url):
            await wait_http(f"{url}/healthz")
        proxy, proxy_url = await ignoring_wait_proxy(clock_url)
        for name, endpoint in (("bench", bridge_url), ("clock", clock_url), ("clock-polled", proxy_url)):
            cluster.running_session(name, endpoint)
        await latency(cluster, bridge_url, {"through the gateway": gateway_url,
                                            "gateway, GET per message": get_only_url}, args.messages)
        get_only.terminate()
        await latencies(clock_url, gateway_url, args.lines, args.polled_lines)
        await streams(bridge_url, clock_url, gateway_url, gateway.pid, args.streams, args.lines)
    finally:
        if proxy is not None:
            await proxy.cleanup()
        for process in (gateway, get_only, bridge, clock):
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--lines", type=int, default=400, help="frames timed for the push latency")
    parser.add_argument("--polled-lines", type=int, default=200, help="frames timed for the polling baseline")
    parser.add_argument("--streams", type=int, nargs="+", default=[250, 1000, 5000])
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # a socket per stream, here and in the gateway
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(f"agent-session-operator gateway bench, {time.strftime('%Y-%m-%dT%H:%M:%S')}, loopback")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
