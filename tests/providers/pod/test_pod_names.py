"""Pod and PVC names: deterministic, DNS-1123 labels, distinct per session uid."""

from __future__ import annotations

import re

import pytest

from agent_sessions.providers.pod import pod_name, pvc_name
from agent_sessions.providers.pod.names import label_value

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
UID = "0b6c3a1e-8f5d-4c1b-9a77-3f2f1e0d9c8b"


@pytest.mark.parametrize(
    ("name", "pod_pattern", "pvc_pattern"),
    [
        pytest.param("demo", r"^ags-demo-[0-9a-f]{8}$", r"^ags-demo-workspace-[0-9a-f]{8}$", id="short"),
        pytest.param("my.session.v1", r"^ags-my-session-v1-[0-9a-f]{8}$", r"^ags-my-session-v1-workspace-[0-9a-f]{8}$",
                     id="dots-become-dashes"),
        pytest.param("a" * 253, r"^ags-a{50}-[0-9a-f]{8}$", r"^ags-a{40}-workspace-[0-9a-f]{8}$", id="longest-name"),
        pytest.param("x-" * 40 + "y", r"^ags-(x-)*x-[0-9a-f]{8}$", r"^ags-(x-)*x-workspace-[0-9a-f]{8}$",
                     id="no-dash-left-at-the-cut"),
        pytest.param("Caps_And_Underscores", r"^ags-caps-and-underscores-[0-9a-f]{8}$",
                     r"^ags-caps-and-underscores-workspace-[0-9a-f]{8}$", id="lowercased"),
    ],
)
def test_names_are_dns_labels_that_keep_the_session_name_readable(name, pod_pattern, pvc_pattern):
    pod, pvc = pod_name("team-a", name, UID), pvc_name("team-a", name, UID)
    for value, pattern in ((pod, pod_pattern), (pvc, pvc_pattern)):
        assert len(value) <= 63
        assert DNS_LABEL.match(value), value
        assert re.match(pattern, value), value


def test_names_are_stable_for_a_session():
    assert pod_name("ns", "demo", UID) == pod_name("ns", "demo", UID)
    assert pvc_name("ns", "demo", UID) == pvc_name("ns", "demo", UID)


def test_a_recreated_session_with_the_same_name_gets_new_names():
    other = "5e1f9d7a-0000-4c1b-9a77-3f2f1e0d9c8b"
    assert pod_name("ns", "demo", UID) != pod_name("ns", "demo", other)
    assert pvc_name("ns", "demo", UID) != pvc_name("ns", "demo", other)


def test_pod_and_workspace_of_one_session_share_the_hash():
    assert pod_name("ns", "demo", UID)[-8:] == pvc_name("ns", "demo", UID)[-8:]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("demo", "demo", id="kept"),
        pytest.param("my.session", "my.session", id="dots-allowed"),
        pytest.param("a" * 70, "a" * 63, id="cut-to-63"),
        pytest.param("a" * 62 + ".b", "a" * 62, id="no-dot-left-at-the-cut"),
    ],
)
def test_label_values_are_valid_whatever_the_session_name(value, expected):
    assert label_value(value) == expected
    assert LABEL_VALUE.match(label_value(value))
