"""Which Secrets and ConfigMaps a session names, and the index from them to sessions (pure)."""

from __future__ import annotations

import pytest

from agent_sessions.handlers.dependencies import (
    CONFIG_MAPS,
    SECRETS,
    DependencyIndex,
    named_objects,
    session_dependencies,
)


def _session(spec: dict, name: str = "s") -> dict:
    return {"metadata": {"name": name, "namespace": "team"}, "spec": spec}


def _template(name: str, spec: dict) -> dict:
    return {"metadata": {"name": name, "namespace": "team"}, "spec": spec}


@pytest.mark.parametrize(("spec", "expected"), [
    ({}, set()),
    ({"http": {"url": "http://p", "credentialsSecretRef": {"name": "token", "key": "t"}}}, {(SECRETS, "token")}),
    ({"agent": {"env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s1", "key": "k"}}},
                        {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "c1", "key": "k"}}},
                        {"name": "C", "value": "literal"}]}},
     {(SECRETS, "s1"), (CONFIG_MAPS, "c1")}),
    ({"agent": {"envFrom": [{"secretRef": {"name": "s2"}}, {"prefix": "X_", "configMapRef": {"name": "c2"}}]}},
     {(SECRETS, "s2"), (CONFIG_MAPS, "c2")}),
    ({"podTemplate": {"volumes": [{"name": "a", "secret": {"secretName": "s3"}},
                                  {"name": "b", "configMap": {"name": "c3"}},
                                  {"name": "c", "projected": {"sources": [{"secret": {"name": "s4"}},
                                                                         {"configMap": {"name": "c4"}}]}},
                                  {"name": "d", "emptyDir": {}}]}},
     {(SECRETS, "s3"), (CONFIG_MAPS, "c3"), (SECRETS, "s4"), (CONFIG_MAPS, "c4")}),
    # A reference without a name names nothing; a free-form field's own "name" is no reference.
    ({"agent": {"env": [{"name": "A", "valueFrom": {"secretKeyRef": {"key": "k"}}}]}, "meta": {"name": "x"}}, set()),
])
def test_named_objects_finds_every_reference_by_its_shape(spec, expected):
    assert named_objects(spec) == expected


def test_a_deeply_nested_free_form_field_is_searched_only_to_a_bound():
    deep: dict = {"secretRef": {"name": "far"}}
    for _ in range(100):
        deep = {"x": deep}
    assert named_objects({"meta": deep}) == set()


def test_a_session_depends_on_what_its_whole_template_chain_names():
    templates = {
        "base": _template("base", {"http": {"credentialsSecretRef": {"name": "platform", "key": "token"}}}),
        "team": _template("team", {"extends": "base",
                                   "agent": {"envFrom": [{"configMapRef": {"name": "team-settings"}}]}}),
        "other": _template("other", {"agent": {"envFrom": [{"secretRef": {"name": "unrelated"}}]}}),
    }
    session = _session({"templateRef": {"name": "team"},
                        "agent": {"env": [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "own", "key": "k"}}}]}})
    assert session_dependencies(session, templates) == {
        (SECRETS, "platform"), (CONFIG_MAPS, "team-settings"), (SECRETS, "own")}


@pytest.mark.parametrize("templates", [
    {},  # the named template does not exist (yet)
    {"team": _template("team", {"extends": "team"})},  # a loop
    {"team": _template("team", {"extends": "gone"})},  # a missing parent
])
def test_a_broken_chain_yields_what_its_existing_links_name(templates):
    session = _session({"templateRef": {"name": "team"}, "http": {"credentialsSecretRef": {"name": "own"}}})
    assert session_dependencies(session, templates) == {(SECRETS, "own")}


def test_the_index_finds_the_sessions_naming_an_object_in_their_namespace_only():
    index = DependencyIndex()
    index.update(("team", "a"), "team", frozenset({(SECRETS, "token"), (CONFIG_MAPS, "settings")}))
    index.update(("team", "b"), "team", frozenset({(SECRETS, "token")}))
    index.update(("other", "c"), "other", frozenset({(SECRETS, "token")}))

    assert sorted(index.sessions_naming(SECRETS, "team", "token")) == [("team", "a"), ("team", "b")]
    assert index.sessions_naming(CONFIG_MAPS, "team", "settings") == [("team", "a")]
    assert index.sessions_naming(CONFIG_MAPS, "team", "token") == []  # a ConfigMap of that name: another object
    assert index.sessions_naming(SECRETS, "other", "token") == [("other", "c")]
    assert index.sessions_naming(SECRETS, "team", "nobody") == []


def test_the_index_follows_a_session_that_names_other_objects_and_forgets_a_deleted_one():
    index = DependencyIndex()
    index.update(("team", "a"), "team", frozenset({(SECRETS, "old")}))
    index.update(("team", "a"), "team", frozenset({(SECRETS, "new")}))
    assert index.sessions_naming(SECRETS, "team", "old") == []
    assert index.sessions_naming(SECRETS, "team", "new") == [("team", "a")]
    assert index.dependencies_of(("team", "a")) == {(SECRETS, "new")}

    index.forget(("team", "a"))
    index.forget(("team", "a"))  # twice: nothing to forget
    assert index.sessions_naming(SECRETS, "team", "new") == []
    assert len(index) == 0
    index.update(("team", "b"), "team", frozenset())
    assert len(index) == 0  # a session naming nothing takes no room
