"""The local pod runner: pods of the embedded API run as real local processes.

Real processes, no operator: pods are created directly in the embedded API, their containers run
small Python programs (a tiny HTTP server standing in for the runtime bridge), and every test
checks that nothing it started is left running.
"""

from __future__ import annotations

import base64
import json
import os
import re
import sys
import textwrap
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent_sessions.dev.object_store import ApiError
from agent_sessions.dev.pod_runner import (
    LocalPodRunner,
    LoopbackAddresses,
    Mount,
    StartError,
    executable,
    expand,
    localize,
)
from agent_sessions.dev.strict_api import StrictKubernetesAPI, running_api
from support.processes import alive
from support.waits import wait_until

TIER = "embedded"  # runs pods as local processes

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs 127.0.0.0/8 on lo and /proc")

NS = "default"
TIMEOUT = 10.0
MARKER = f"pod-runner-test-{uuid.uuid4().hex}"
"""In every test pod's environment: how the leak check finds what the runner started."""

SERVER = textwrap.dedent(
    """
    import http.server, os, sys, threading, time
    gate = sys.argv[1] if len(sys.argv) > 1 else None
    while gate and not os.path.exists(gate):  # start serving only once the test says so
        time.sleep(0.02)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/stop":  # stop answering, keep running
                threading.Thread(target=server.shutdown).start()
            body = os.environ["HOSTNAME"].encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer((os.environ["AGENT_SESSIONS_RUNTIME_HOST"], 8080), Handler)
    print("listening", flush=True)
    server.serve_forever()
    time.sleep(3600)
    """
)

FAMILY = textwrap.dedent(
    """
    import signal, subprocess, sys, time
    if "--ignore-sigterm" in sys.argv:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    print(f"pids {child.pid}", flush=True)
    time.sleep(300)
    """
)


# --- harness ---------------------------------------------------------------------------------

@pytest.fixture
def api() -> Iterator[StrictKubernetesAPI]:
    with running_api() as server:
        yield server


@pytest.fixture
def no_leaks() -> Iterator[None]:
    yield
    deadline = time.monotonic() + 2
    while (left := _marked_processes()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not left, f"processes left running: {left}"


@pytest.fixture
def make_runner(api: StrictKubernetesAPI, tmp_path: Path, no_leaks: None) -> Iterator[Callable[..., LocalPodRunner]]:
    started: list[LocalPodRunner] = []

    def make(root: Path | str | None = None, **options: Any) -> LocalPodRunner:
        options = {"restart_backoff": (0.1, 1.0), "ready_probe_interval": 0.2, **options}
        runner = LocalPodRunner(api, tmp_path / "pods" if root is None else root, **options).start()
        started.append(runner)
        return runner

    yield make
    for runner in started:
        runner.stop()


@pytest.fixture
def runner(make_runner: Callable[..., LocalPodRunner]) -> LocalPodRunner:
    return make_runner()


def pod(name: str, command: list[str], *, restart_policy: str = "Never", probe: bool = False,
        env: list[dict] | None = None, volumes: list[dict] | None = None, grace: int = 2,
        failure_threshold: int = 3) -> dict:
    container: dict[str, Any] = {
        "name": "agent",
        "image": "ghcr.io/agent-session-operator/agent-sessions:0.1.0",
        "command": command,
        "env": [*(env or []), {"name": "LEAK_MARKER", "value": MARKER}],
        "workingDir": "/workspace",
        "ports": [{"name": "runtime", "containerPort": 8080, "protocol": "TCP"}],
        "volumeMounts": [{"name": "ags-workspace", "mountPath": "/workspace"}],
    }
    if probe:
        container["readinessProbe"] = {"httpGet": {"path": "/healthz", "port": "runtime"},
                                       "periodSeconds": 5, "failureThreshold": failure_threshold}
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS},
        "spec": {"restartPolicy": restart_policy, "terminationGracePeriodSeconds": grace,
                 "containers": [container],
                 "volumes": volumes or [{"name": "ags-workspace", "emptyDir": {}}]},
    }


def python(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args]


def wait_pod(api: StrictKubernetesAPI, name: str, predicate: Callable[[dict], bool],
             timeout: float = TIMEOUT) -> dict:
    def check() -> dict | None:
        obj = api.get("pods", NS, name)
        return obj if obj is not None and predicate(obj) else None

    try:
        return api.wait_for(check, timeout=timeout)
    except TimeoutError:
        obj = api.get("pods", NS, name)
        raise AssertionError(f"pod {name} never matched; last status: {json.dumps((obj or {}).get('status'), indent=1)}"
                             f"\nlog: {log(api, name)!r}") from None


def container(obj: dict) -> dict:
    return ((obj.get("status") or {}).get("containerStatuses") or [{}])[0]


def phase(obj: dict) -> str | None:
    return (obj.get("status") or {}).get("phase")


def ready(obj: dict) -> bool:
    conditions = {c["type"]: c["status"] for c in (obj.get("status") or {}).get("conditions") or []}
    return conditions.get("Ready") == "True" and container(obj).get("ready") is True


def waiting_reason(obj: dict) -> str | None:
    return (container(obj).get("state") or {}).get("waiting", {}).get("reason")


def log(api: StrictKubernetesAPI, name: str) -> str:
    """pods/log over HTTP, as `kubectl logs` reads it."""
    try:
        with urllib.request.urlopen(f"{api.url}/api/v1/namespaces/{NS}/pods/{name}/log", timeout=5) as response:
            return response.read().decode()
    except OSError:
        return ""


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode()


def _marked_processes() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            if MARKER.encode() in environ and alive(int(entry.name)):
                found.append(int(entry.name))
    return found


def family_pids(api: StrictKubernetesAPI, runner: LocalPodRunner, name: str) -> list[int]:
    """The container's main process and the child it started."""
    text = wait_pod_log(api, name, r"pids (\d+)")
    process = runner.process(NS, name)
    assert process is not None
    return [process.pid, int(re.search(r"pids (\d+)", text).group(1))]  # type: ignore[union-attr]


def wait_pod_log(api: StrictKubernetesAPI, name: str, pattern: str) -> str:
    return wait_until(lambda: (text := log(api, name)) and re.search(pattern, text) and text)


# --- running and readiness -------------------------------------------------------------------

def test_pod_runs_and_becomes_ready_only_once_its_probe_answers(api, runner, tmp_path):
    api.create("pods", pod("web", python(SERVER, "go"), probe=True))

    running = wait_pod(api, "web", lambda p: phase(p) == "Running" and container(p).get("started") is True)
    ip = running["status"]["podIP"]
    assert re.fullmatch(r"127\.0\.0\.(\d+)", ip) and int(ip.rsplit(".", 1)[1]) >= 2
    assert running["status"]["podIPs"] == [{"ip": ip}]
    assert runner.pod_ip(NS, "web") == ip
    assert not ready(running)
    with pytest.raises(OSError):  # not serving yet: and not ready
        get(f"http://{ip}:8080/healthz")
    assert not ready(api.get("pods", NS, "web"))

    (tmp_path / "pods" / NS / "web" / "workspace" / "go").touch()
    serving = wait_pod(api, "web", ready)
    assert phase(serving) == "Running"
    assert get(f"http://{ip}:8080/healthz") == (200, "web")


def test_readiness_goes_false_when_the_probe_stops_answering(api, runner):
    api.create("pods", pod("web", python(SERVER), probe=True, failure_threshold=1))
    ip = wait_pod(api, "web", ready)["status"]["podIP"]

    get(f"http://{ip}:8080/stop")

    unready = wait_pod(api, "web", lambda p: not ready(p))
    assert phase(unready) == "Running"
    assert container(unready)["state"].get("running") and container(unready)["restartCount"] == 0


def test_two_pods_listen_on_the_same_port_at_distinct_addresses(api, runner):
    api.create("pods", pod("one", python(SERVER), probe=True))
    api.create("pods", pod("two", python(SERVER), probe=True))

    ips = {name: wait_pod(api, name, ready)["status"]["podIP"] for name in ("one", "two")}

    assert ips["one"] != ips["two"]
    assert {get(f"http://{ip}:8080/healthz")[1] for ip in ips.values()} == {"one", "two"}


# --- environment, volumes, command line ------------------------------------------------------

REPORT = textwrap.dedent(
    """
    import json, os, sys
    names = ["LITERAL", "EXPANDED", "SECRET", "CONFIG", "OPTIONAL", "FROM_ENVFROM", "POD_NAME", "POD_NAMESPACE",
             "POD_UID", "POD_IP", "AGENT_SESSIONS_RUNTIME_HOST", "HOME", "HOSTNAME", "PATH"]
    print(json.dumps({"env": {n: os.environ.get(n) for n in names}, "argv": sys.argv[1:], "cwd": os.getcwd()}))
    """
)


def test_env_comes_from_literals_secrets_config_maps_and_the_pod_itself(api, runner, tmp_path):
    api.create("secrets", {"metadata": {"name": "creds", "namespace": NS},
                           "data": {"token": base64.b64encode(b"s3cret").decode()}})
    api.create("configmaps", {"metadata": {"name": "settings", "namespace": NS},
                              "data": {"level": "debug", "FROM_ENVFROM": "yes"}})
    spec = pod("env", python(REPORT, "--workspace", "/workspace", "--history=/workspace/h.jsonl"), env=[
        {"name": "LITERAL", "value": "hello"},
        {"name": "EXPANDED", "value": "$(LITERAL)-world-$$(LITERAL)"},
        {"name": "SECRET", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
        {"name": "CONFIG", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "level"}}},
        {"name": "OPTIONAL", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "x", "optional": True}}},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "POD_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
    ])
    spec["spec"]["containers"][0]["envFrom"] = [{"configMapRef": {"name": "settings"}}]
    created = api.create("pods", spec)

    done = wait_pod(api, "env", lambda p: phase(p) == "Succeeded")

    report = json.loads(log(api, "env"))
    workspace = str(tmp_path / "pods" / NS / "env" / "workspace")
    ip = done["status"]["podIP"]
    assert report["env"] == {
        "LITERAL": "hello", "EXPANDED": "hello-world-$(LITERAL)", "SECRET": "s3cret", "CONFIG": "debug",
        "OPTIONAL": None, "FROM_ENVFROM": "yes", "POD_NAME": "env", "POD_NAMESPACE": NS,
        "POD_UID": created["metadata"]["uid"], "POD_IP": ip, "AGENT_SESSIONS_RUNTIME_HOST": ip,
        "HOME": workspace, "HOSTNAME": "env", "PATH": report["env"]["PATH"],
    }
    assert report["env"]["PATH"].split(os.pathsep)[0] == os.path.dirname(sys.executable)
    assert report["argv"] == ["--workspace", workspace, f"--history={workspace}/h.jsonl"]
    assert report["cwd"] == workspace


def test_a_runner_rooted_at_a_relative_path_hands_its_containers_paths_they_can_open(api, make_runner, tmp_path,
                                                                                       monkeypatch):
    # `make dev` roots the runner at `.dev/pods`; a container runs in its workspace, so a mount
    # path localized relative to the operator's directory would not be found from there.
    monkeypatch.chdir(tmp_path)
    make_runner(root="relative/pods")
    api.create("secrets", {"metadata": {"name": "token", "namespace": NS},
                           "data": {"token": base64.b64encode(b"t0ken").decode()}})
    spec = pod("reads-mounts", python("import os, sys; print(os.path.isabs(sys.argv[1]), "
                                      "open(os.environ['TOKEN_FILE']).read())", "/workspace"),
               env=[{"name": "TOKEN_FILE", "value": "/var/run/agent-session/token"}],
               volumes=[{"name": "ags-workspace", "emptyDir": {}},
                        {"name": "ags-runtime-token", "secret": {"secretName": "token", "defaultMode": 0o440}}])
    spec["spec"]["containers"][0]["volumeMounts"].append(
        {"name": "ags-runtime-token", "mountPath": "/var/run/agent-session", "readOnly": True})
    api.create("pods", spec)

    done = wait_pod(api, "reads-mounts", lambda p: phase(p) in ("Succeeded", "Failed"))
    assert (phase(done), log(api, "reads-mounts").strip()) == ("Succeeded", "True t0ken")


def test_a_missing_secret_or_key_is_a_create_container_config_error_until_it_appears(api, runner):
    api.create("pods", pod("needs-secret", python("import os; print(os.environ['TOKEN'])"), env=[
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
    ]))

    waiting = wait_pod(api, "needs-secret", lambda p: waiting_reason(p) == "CreateContainerConfigError")
    assert phase(waiting) == "Pending"
    assert container(waiting)["state"]["waiting"]["message"] == 'secret "creds" not found'
    assert runner.process(NS, "needs-secret") is None

    api.create("secrets", {"metadata": {"name": "creds", "namespace": NS}, "data": {"other": "eA=="}})
    wait_pod(api, "needs-secret", lambda p: container(p)["state"].get("waiting", {}).get("message")
             == f"couldn't find key token in Secret {NS}/creds")

    api.patch("secrets", NS, "creds", {"stringData": {"token": "late"}})
    wait_pod(api, "needs-secret", lambda p: phase(p) == "Succeeded")
    assert log(api, "needs-secret") == "late\n"


# --- logs --------------------------------------------------------------------------------------

def test_output_lines_of_stdout_and_stderr_appear_in_the_pod_log(api, runner):
    code = "import sys; print('one'); print('two'); print('three', file=sys.stderr)"
    api.create("pods", pod("talker", python(code)))

    wait_pod(api, "talker", lambda p: phase(p) == "Succeeded")

    assert log(api, "talker") == "one\ntwo\nthree\n"


def test_the_pod_log_is_bounded_and_keeps_the_newest_lines(api, make_runner):
    make_runner(max_log_bytes=2000)
    api.create("pods", pod("chatty", python("for i in range(1000): print(f'line-{i:04d}')")))

    wait_pod(api, "chatty", lambda p: phase(p) == "Succeeded")

    text = log(api, "chatty")
    assert 0 < len(text.encode()) <= 2000
    assert text.endswith("line-0999\n") and text.startswith("line-")


# --- exits and restarts ------------------------------------------------------------------------

@pytest.mark.parametrize(("policy", "code", "expected_phase", "reason"), [
    ("Never", 0, "Succeeded", "Completed"),
    ("OnFailure", 0, "Succeeded", "Completed"),
    ("Never", 3, "Failed", "Error"),
])
def test_an_exit_that_is_not_restarted_ends_the_pod(api, runner, policy, code, expected_phase, reason):
    api.create("pods", pod("job", python(f"raise SystemExit({code})"), restart_policy=policy))

    done = wait_pod(api, "job", lambda p: phase(p) in ("Succeeded", "Failed"))

    assert phase(done) == expected_phase
    terminated = container(done)["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (code, reason)
    assert container(done)["restartCount"] == 0 and not ready(done)
    assert runner.pod_ip(NS, "job") is None  # released: nothing runs there any more


@pytest.mark.parametrize(("policy", "code"), [("OnFailure", 3), ("Always", 0)])
def test_an_exit_that_is_restarted_backs_off_then_runs_again(api, runner, policy, code):
    api.create("pods", pod("crasher", python(f"import time; print('up', flush=True); raise SystemExit({code})"),
                           restart_policy=policy))

    restarted = wait_pod(api, "crasher", lambda p: container(p).get("restartCount", 0) >= 1)

    assert phase(restarted) == "Running"
    last = container(restarted)["lastState"]["terminated"]
    assert (last["exitCode"], last["reason"]) == (code, "Completed" if code == 0 else "Error")
    states = [container(e.object) for e in api.store.events_after(0) if e.group_resource == ("", "pods")]
    back_off = [s for s in states if (s.get("state") or {}).get("waiting", {}).get("reason") == "CrashLoopBackOff"]
    assert back_off and back_off[0]["restartCount"] == 1 and back_off[0]["lastState"]["terminated"]["exitCode"] == code
    wait_pod(api, "crasher", lambda p: container(p).get("restartCount", 0) >= 1 and "running" in container(p)["state"])
    assert wait_pod_log(api, "crasher", "up\nup\n")


# --- volumes -------------------------------------------------------------------------------------

NOTE = "import sys; path = sys.argv[1]; open(path, 'a').write(sys.argv[2] + '\\n'); print(open(path).read(), end='')"


def test_a_claim_backed_workspace_survives_the_pod_being_deleted_and_created_again(api, runner, tmp_path):
    claim = [{"name": "ags-workspace", "persistentVolumeClaim": {"claimName": "work"}}]
    api.create("pods", pod("session", python(NOTE, "/workspace/notes.txt", "first"), volumes=claim))
    first = wait_pod(api, "session", lambda p: phase(p) == "Succeeded")

    api.delete("pods", NS, "session")
    api.create("pods", pod("session", python(NOTE, "/workspace/notes.txt", "second"), volumes=claim))
    second = wait_pod(api, "session", lambda p: phase(p) == "Succeeded")

    assert second["metadata"]["uid"] != first["metadata"]["uid"]
    assert log(api, "session") == "first\nsecond\n"
    assert (tmp_path / "pods" / NS / "pvc" / "work" / "notes.txt").read_text() == "first\nsecond\n"


# --- deletion and stopping ---------------------------------------------------------------------

def test_deleting_a_pod_kills_its_process_group_and_removes_its_empty_dirs(api, runner, tmp_path):
    api.create("pods", pod("doomed", python(FAMILY, "--ignore-sigterm"), grace=1))
    pids = family_pids(api, runner, "doomed")
    assert all(alive(pid) for pid in pids)
    workspace = tmp_path / "pods" / NS / "doomed" / "workspace"
    assert workspace.is_dir()

    api.delete("pods", NS, "doomed")

    wait_until(lambda: not any(alive(pid) for pid in pids))  # SIGTERM ignored: SIGKILL after 1 s
    wait_until(lambda: not workspace.exists())
    assert runner.pod_ip(NS, "doomed") is None


GRACEFUL = textwrap.dedent(
    """
    import pathlib, signal, sys, time
    def stop(*_):
        time.sleep(0.3)  # a little cleanup before exiting
        pathlib.Path(sys.argv[1]).write_text("terminated")
        sys.exit(0)
    signal.signal(signal.SIGTERM, stop)
    print("running", flush=True)
    time.sleep(300)
    """
)


def test_a_pod_is_bound_to_the_embedded_node_before_it_runs(api, runner):
    api.create("pods", pod("bound", python(FAMILY)))
    running = wait_pod(api, "bound", lambda p: phase(p) == "Running")
    assert running["spec"]["nodeName"] == "embedded-node"


def test_a_deleted_pod_gets_sigterm_and_leaves_the_api_only_once_its_process_is_gone(api, runner, tmp_path):
    api.create("pods", pod("graceful", python(GRACEFUL, str(tmp_path / "sigterm")), grace=5))
    wait_pod_log(api, "graceful", "running")
    process = runner.process(NS, "graceful")
    assert process is not None
    alive_at_removal: list[bool] = []
    api.store.removal_hooks.append(
        lambda resource, obj: resource == ("", "pods") and alive_at_removal.append(alive(process.pid)))

    deleting = api.delete("pods", NS, "graceful")

    assert deleting["metadata"]["deletionGracePeriodSeconds"] == 5
    assert api.get("pods", NS, "graceful")["metadata"]["deletionTimestamp"]  # terminating, not gone
    api.wait_for(lambda: api.get("pods", NS, "graceful") is None)
    assert alive_at_removal == [False]
    assert (tmp_path / "sigterm").read_text() == "terminated"  # it stopped by itself, on SIGTERM
    assert runner.pod_ip(NS, "graceful") is None


def test_a_shortened_grace_period_brings_the_sigkill_forward(api, make_runner):
    runner = make_runner(max_grace_period=60)
    api.create("pods", pod("stubborn", python(FAMILY, "--ignore-sigterm"), grace=60))
    pids = family_pids(api, runner, "stubborn")
    api.delete("pods", NS, "stubborn")
    assert api.get("pods", NS, "stubborn")["metadata"]["deletionGracePeriodSeconds"] == 60

    api.delete("pods", NS, "stubborn", grace_period_seconds=1)

    api.wait_for(lambda: api.get("pods", NS, "stubborn") is None)  # well before the 60 s
    assert not any(alive(pid) for pid in pids)


def test_a_pod_of_the_same_name_waits_until_the_terminating_one_is_gone(api, runner):
    api.create("pods", pod("again", python(FAMILY, "--ignore-sigterm"), grace=1))
    family_pids(api, runner, "again")
    api.delete("pods", NS, "again")
    with pytest.raises(ApiError) as refused:
        api.create("pods", pod("again", python(FAMILY)))
    assert refused.value.code == 409 and refused.value.reason == "AlreadyExists"
    api.wait_for(lambda: api.get("pods", NS, "again") is None)
    api.create("pods", pod("again", python(FAMILY)))
    wait_pod(api, "again", lambda p: phase(p) == "Running")


def test_stopping_the_runner_kills_every_process_it_started(api, make_runner):
    runner = make_runner()
    for name in ("a", "b"):
        api.create("pods", pod(name, python(FAMILY)))
    pids = [pid for name in ("a", "b") for pid in family_pids(api, runner, name)]

    runner.stop()

    assert not any(alive(pid) for pid in pids)
    assert not _marked_processes()


# --- the pure parts ------------------------------------------------------------------------------

MOUNTS = [Mount("/workspace/cache", Path("/r/cache")), Mount("/workspace", Path("/r/ws")),
          Mount("/tmp", Path("/r/tmp"))]


@pytest.mark.parametrize(("value", "expected"), [
    ("/workspace", "/r/ws"),
    ("/workspace/a/b", "/r/ws/a/b"),
    ("/workspace/cache/x", "/r/cache/x"),
    ("--workspace=/workspace/h.jsonl", "--workspace=/r/ws/h.jsonl"),
    ("/workspaces", "/workspaces"),
    ("workspace", "workspace"),
    ("/etc/passwd", "/etc/passwd"),
    ("a=b", "a=b"),
])
def test_container_paths_under_a_mount_become_local_paths(value, expected):
    assert localize(value, MOUNTS) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("$(A)", "1"),
    ("x-$(A)-$(B)", "x-1-$(B)"),
    ("$$(A)", "$(A)"),
    ("$$", "$"),
    ("$(A", "$(A"),
])
def test_variable_references_expand_as_the_kubelet_expands_them(text, expected):
    assert expand(text, {"A": "1"}) == expected


def test_agent_sessions_runs_as_a_module_where_its_script_is_not_installed(tmp_path):
    assert executable(["agent-sessions", "runtime"], str(tmp_path)) == [
        sys.executable, "-m", "agent_sessions.cli.main", "runtime"]
    with pytest.raises(StartError, match='exec: "no-such-tool": executable file not found'):
        executable(["no-such-tool"], str(tmp_path))


def test_loopback_addresses_are_handed_out_round_robin_and_never_twice_at_once():
    addresses = LoopbackAddresses(first=2, last=4)
    taken = [addresses.acquire() for _ in range(3)]
    assert taken == ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    waiter = threading.Event()
    assert addresses.acquire(waiter) is None

    addresses.release("127.0.0.3")

    assert waiter.is_set()
    assert addresses.acquire() == "127.0.0.3"
