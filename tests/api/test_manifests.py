"""Custom resources checked the way the API server checks them, against the committed CRDs.

Every file under `invalid/` states, in an `# expect:` line, the error the API server would answer
with; every sample under `manifests/samples/` must be accepted (and parse with the models).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from agent_sessions.api import AgentSession, SessionTemplate
from agent_sessions.dev.admission import SKIPPED_RULES, CRDValidator

ROOT = Path(__file__).resolve().parents[2]
INVALID = sorted((Path(__file__).parent / "invalid").glob("*.yaml"))
SAMPLES = sorted((ROOT / "manifests" / "samples").glob("*.yaml"))
VALIDATORS = {
    crd["spec"]["names"]["kind"]: CRDValidator(crd)
    for crd in (yaml.safe_load((ROOT / "crds" / name).read_text()) for name in ("agentsessions.yaml", "sessiontemplates.yaml"))
}
MODELS = {"AgentSession": AgentSession, "SessionTemplate": SessionTemplate}


def expectation(path: Path) -> str:
    match = re.search(r"^# expect: (.+)$", path.read_text(), re.MULTILINE)
    assert match, f"{path.name} has no '# expect:' line"
    return match.group(1)


def test_the_corpus_has_at_least_85_invalid_manifests():
    # 44 before issue 10; 45-86 are its admission list (env names, quantities, requests and
    # limits, subPath, image references, durations).
    assert len(INVALID) >= 85


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_manifest_is_rejected_with_a_specific_message(path):
    obj = yaml.safe_load(path.read_text())
    errors = [str(e) for e in VALIDATORS[obj["kind"]].validate(obj)]
    expected = expectation(path)
    # Server notes are not errors of their own: that the CEL rules were not checked, and that a
    # value matched none of its anyOf schemas (the branch's own error follows it).
    notes = (f"<nil>: Invalid value: null: {SKIPPED_RULES}", '<nil>: Invalid value: "": ')
    errors = [e for e in errors if not e.startswith(notes)]
    assert expected in errors[0], errors
    # One specific problem: every error names the same field (an int-or-string value of the wrong
    # type is reported once as int-or-string, once by the branch the server tried).
    assert len({e.split(": ", 1)[0] for e in errors}) == 1, f"expected one problem, got {errors!r}"


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_sample_is_accepted_by_the_crd_and_the_models(path):
    for obj in yaml.safe_load_all(path.read_text()):
        assert [str(e) for e in VALIDATORS[obj["kind"]].validate(obj)] == []
        MODELS[obj["kind"]].model_validate(obj)


def test_there_are_samples_of_every_kind_and_provider():
    docs = [d for p in SAMPLES for d in yaml.safe_load_all(p.read_text())]
    assert {d["kind"] for d in docs} == {"AgentSession", "SessionTemplate"}
    providers = {d["spec"].get("provider", "pod") for d in docs}
    assert providers == {"pod", "http", "tmux"}
