"""`agent-sessions dev` (behind `make dev`): a real process, driven with kubectl, stopped by Ctrl-C."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from support.tools import find_tool

TIER = "embedded"  # runs `agent-sessions dev` as a subprocess

ROOT = Path(__file__).resolve().parents[2]


def read_until(process: subprocess.Popen, marker: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if marker in line:
            return "".join(seen)
    process.kill()
    raise AssertionError(f"never printed {marker!r}; output: {''.join(seen)}; stderr: {process.stderr.read()}")


def test_dev_serves_kubectl_runs_the_samples_answers_messages_and_stops_on_ctrl_c(tmp_path):
    kubectl = find_tool("kubectl")
    kubeconfig = tmp_path / "kubeconfig"
    process = subprocess.Popen(
        [sys.executable, "-m", "agent_sessions.cli.main", "dev", "--port", "0",
         "--kubeconfig-out", str(kubeconfig), "--samples", str(ROOT / "manifests" / "samples")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        banner = read_until(process, "Ctrl-C stops everything.", timeout=30)
        assert f"kubectl --kubeconfig {kubeconfig} get ags" in banner
        assert "Applied 7 samples" in banner

        def sessions() -> dict[str, dict]:
            out = subprocess.run([kubectl, "--kubeconfig", str(kubeconfig), "get", "ags", "-o", "json"],
                                 capture_output=True, text=True, check=True).stdout
            return {i["metadata"]["name"]: i.get("status") or {} for i in json.loads(out)["items"]}

        deadline = time.monotonic() + 30
        while True:
            phases = {name: st.get("phase") for name, st in sessions().items()}
            if phases.get("demo") == "Running" and phases.get("minimal") == "Running" and phases.get("parked") == "Stopped":
                break
            assert time.monotonic() < deadline, phases
            time.sleep(0.2)
        cloud = sessions()["cloud"]  # the http sample needs a platform at its URL: it waits for one
        assert cloud.get("phase") == "Pending"
        assert {x["type"]: x["status"] for x in cloud.get("conditions") or []}.get("ProviderAvailable") == "False"
        if shutil.which("tmux"):  # dev offers the tmux provider where tmux exists
            deadline = time.monotonic() + 30
            while sessions()["local"].get("phase") != "Running":
                assert time.monotonic() < deadline, sessions()["local"]
                time.sleep(0.2)

        table = subprocess.run([kubectl, "--kubeconfig", str(kubeconfig), "get", "ags"],
                               capture_output=True, text=True, check=True).stdout
        assert table.split("\n")[0].split() == ["NAME", "PHASE", "PROVIDER", "TITLE", "HEALTH", "AGE"]
        assert "Demo session" in table

        # The sample session really answers: the pod runner runs the runtime bridge and the demo agent.
        sent = subprocess.run(
            [sys.executable, "-m", "agent_sessions.cli.main", "send", "demo", "hello", "--kubeconfig", str(kubeconfig)],
            capture_output=True, text=True, timeout=60,
        )
        assert (sent.returncode, sent.stdout, sent.stderr) == (0, "You said: hello\n", "")
    finally:
        process.send_signal(signal.SIGINT)
        try:
            out, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert process.returncode == 0
    assert "agent-sessions dev: stopped." in out
