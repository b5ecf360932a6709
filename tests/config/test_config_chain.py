"""Template chains: root first, and broken links named by the object holding them."""

from __future__ import annotations

import pytest

from agent_sessions.config import MAX_CHAIN_DEPTH, ConfigInvalid, template_chain


def templates(**extends: str | None) -> dict[str, dict]:
    return {
        name: {"metadata": {"name": name, "generation": 1}, "spec": {"extends": parent} if parent else {}}
        for name, parent in extends.items()
    }


@pytest.mark.parametrize(
    "start, namespace, expected",
    [
        pytest.param("solo", templates(solo=None), ["solo"], id="template_without_parent"),
        pytest.param("leaf", templates(leaf="mid", mid="root", root=None), ["root", "mid", "leaf"], id="root_first"),
        pytest.param("mid", templates(leaf="mid", mid="root", root=None), ["root", "mid"], id="starts_where_referenced"),
        pytest.param("a", {"a": {"metadata": {"name": "a"}, "spec": {"extends": None}}}, ["a"], id="null_extends_ends_chain"),
    ],
)
def test_template_chain(start, namespace, expected):
    assert [template["metadata"]["name"] for template in template_chain(start, namespace)] == expected


@pytest.mark.parametrize(
    "start, namespace, expected",
    [
        pytest.param("x", templates(a=None), 'spec.templateRef.name: SessionTemplate "x" not found in namespace "ns"',
                     id="missing_referenced_template"),
        pytest.param("a", templates(a="b", b="x"), 'SessionTemplate "b" spec.extends: SessionTemplate "x" not found',
                     id="missing_parent"),
        pytest.param("a", templates(a="b", b="a"), 'SessionTemplate "b" spec.extends: template chain has a cycle: a → b → a',
                     id="cycle"),
        pytest.param("a", templates(a="a"), 'SessionTemplate "a" spec.extends: template chain has a cycle: a → a',
                     id="self_cycle"),
        pytest.param(
            "t0",
            templates(**{f"t{i}": f"t{i + 1}" for i in range(MAX_CHAIN_DEPTH + 4)}),
            f"spec.templateRef.name: template chain is longer than {MAX_CHAIN_DEPTH} templates: "
            + " → ".join(f"t{i}" for i in range(MAX_CHAIN_DEPTH + 1)),
            id="too_deep",
        ),
    ],
)
def test_template_chain_problems(start, namespace, expected):
    with pytest.raises(ConfigInvalid) as raised:
        template_chain(start, namespace, namespace="ns", session="demo")
    assert [str(problem) for problem in raised.value.problems] == [expected]
