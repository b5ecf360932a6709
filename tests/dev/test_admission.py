"""Specifications for API-server-faithful admission of custom resources (dev.admission)."""

from __future__ import annotations

from typing import Any

import pytest

from agent_sessions.dev.admission import CRDValidator, FieldError, validate_object

GROUP, KIND = "agents.example.com", "AgentSession"
STRING = {"type": "string"}
TAGS = {"type": "array", "items": STRING}
ENV = {
    "type": "array",
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["name"],
    "items": {"type": "object", "required": ["name"],
              "properties": {"name": STRING, "value": STRING}},
}


def obj(required: list[str] | None = None, **properties: Any) -> dict:
    """An object schema with the given properties."""
    schema: dict = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def with_rules(schema: dict, *rules: dict) -> dict:
    return {**schema, "x-kubernetes-validations": list(rules)}


def crd(spec_schema: dict, *versions: str) -> dict:
    """A v1 CRD whose versions (storage = the first) all use ``spec_schema`` for ``.spec``."""
    root = obj(apiVersion=STRING, kind=STRING, metadata={"type": "object"}, spec=spec_schema)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"agentsessions.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"kind": KIND, "plural": "agentsessions"},
            "versions": [{"name": name, "served": True, "storage": index == 0,
                          "schema": {"openAPIV3Schema": root}}
                         for index, name in enumerate(versions or ("v1",))],
        },
    }


def resource(spec: Any, **metadata: Any) -> dict:
    return {"apiVersion": f"{GROUP}/v1", "kind": KIND,
            "metadata": {"name": "demo", "namespace": "default", **metadata}, "spec": spec}


def errors_for(spec_schema: dict, spec: Any, old_spec: Any = None) -> list[FieldError]:
    old = None if old_spec is None else resource(old_spec)
    return CRDValidator(crd(spec_schema)).validate(resource(spec), old)


def only_error(errors: list[FieldError]) -> FieldError:
    assert len(errors) == 1, [str(error) for error in errors]
    return errors[0]


REJECTED = [
    pytest.param(obj(provider={**STRING, "enum": ["pod", "http", "tmux"]}), {"provider": "docker"},
                 "spec.provider", 'Unsupported value: "docker": supported values: "pod", "http", "tmux"',
                 id="enum_lists_the_supported_values"),
    pytest.param(obj(name={**STRING, "pattern": "^[a-z]+$"}), {"name": "Ab"},
                 "spec.name", "spec.name in body should match '^[a-z]+$'",
                 id="pattern_mismatch_names_the_pattern"),
    pytest.param(obj(name={**STRING, "maxLength": 4}), {"name": "ééééé"},
                 "spec.name", "Too long: may not be more than 4 bytes",
                 id="max_length_counts_unicode_characters"),
    pytest.param(obj(name={**STRING, "minLength": 1}), {"name": ""},
                 "spec.name", "should be at least 1 chars long",
                 id="min_length_rejects_short_strings"),
    pytest.param(obj(size={"x-kubernetes-int-or-string": True}), {"size": True},
                 "spec.size", 'must be of type integer,string: "boolean"',
                 id="int_or_string_rejects_booleans"),
    pytest.param(obj(size={"x-kubernetes-int-or-string": True}), {"size": 1.5},
                 "spec.size", 'must be of type integer,string: "number"',
                 id="int_or_string_rejects_fractions"),
    pytest.param(obj(replicas={"type": "integer"}), {"replicas": 1.5},
                 "spec.replicas", 'Invalid value: "number": spec.replicas in body must be of type integer',
                 id="integer_rejects_fractions"),
    pytest.param(obj(replicas={"type": "integer"}), {"replicas": True},
                 "spec.replicas", 'must be of type integer: "boolean"',
                 id="integer_rejects_booleans"),
    pytest.param(obj(name=STRING), {"name": None},
                 "spec.name", 'Invalid value: "null": spec.name in body must be of type string: "null"',
                 id="null_is_rejected_unless_nullable"),
    pytest.param(obj(["agent"], agent=obj()), {},
                 "spec.agent", "Required value",
                 id="missing_required_field_is_reported_at_its_own_path"),
    pytest.param(obj(tags={**TAGS, "x-kubernetes-list-type": "set"}), {"tags": ["a", "b", "a"]},
                 "spec.tags[2]", 'Duplicate value: "a"',
                 id="set_list_rejects_duplicate_items"),
    pytest.param(obj(env=ENV), {"env": [{"name": "X", "value": "1"}, {"name": "X", "value": "2"}]},
                 "spec.env[1]", 'Duplicate value: {"name":"X"}',
                 id="map_list_rejects_duplicate_keys"),
    pytest.param(obj(tags={**TAGS, "maxItems": 4}), {"tags": list("abcde")},
                 "spec.tags", "Too many: 5: must have at most 4 items",
                 id="max_items_reports_the_count"),
    pytest.param(obj(tags={**TAGS, "minItems": 1}), {"tags": []},
                 "spec.tags", "should have at least 1 items",
                 id="min_items_rejects_short_lists"),
    pytest.param(obj(meta={"type": "object", "additionalProperties": STRING, "maxProperties": 2}),
                 {"meta": {"a": "1", "b": "2", "c": "3"}},
                 "spec.meta", "Too many: 3: must have at most 2 items",
                 id="max_properties_reports_the_count"),
    pytest.param(obj(meta={"type": "object", "additionalProperties": STRING}), {"meta": {"b": 2}},
                 "spec.meta.b", "must be of type string",
                 id="additional_properties_validate_map_values"),
    pytest.param(obj(meta={"type": "object", "additionalProperties": STRING}), {"meta": {"a.b/c": 2}},
                 "spec.meta[a.b/c]", "must be of type string",
                 id="map_keys_that_are_not_identifiers_are_bracketed"),
    pytest.param(obj(replicas={"type": "integer", "minimum": 1}), {"replicas": 0},
                 "spec.replicas", "Invalid value: 0: spec.replicas in body should be greater than or equal to 1",
                 id="minimum_is_inclusive"),
    pytest.param(obj(ratio={"type": "number", "maximum": 1, "exclusiveMaximum": True}), {"ratio": 1},
                 "spec.ratio", "should be less than 1",
                 id="exclusive_maximum_rejects_the_bound"),
    pytest.param(obj(port={"type": "integer", "multipleOf": 5}), {"port": 12},
                 "spec.port", "should be a multiple of 5",
                 id="multiple_of_rejects_other_numbers"),
    pytest.param(obj(port={"type": "integer", "format": "int32"}), {"port": 2**31},
                 "spec.port", "must be of type int32",
                 id="int32_format_bounds_integers"),
    pytest.param(obj(at={**STRING, "format": "date-time"}), {"at": "yesterday"},
                 "spec.at", 'spec.at in body must be of type date-time: "yesterday"',
                 id="date_time_format_requires_rfc3339"),
    pytest.param({**obj(a=STRING, b=STRING), "oneOf": [{"required": ["a"]}, {"required": ["b"]}]},
                 {"a": "x", "b": "y"},
                 "spec", "must validate one and only one schema (oneOf)",
                 id="one_of_rejects_two_matching_schemas"),
    pytest.param({**obj(a=STRING), "not": {"required": ["a"]}}, {"a": "x"},
                 "spec", "must not validate the schema (not)",
                 id="not_rejects_a_matching_schema"),
    pytest.param({**obj(a=STRING), "allOf": [{"properties": {"a": {"maxLength": 1}}}]}, {"a": "xy"},
                 "spec.a", "Too long: may not be more than 1 bytes",
                 id="all_of_reports_the_failing_schema_errors"),
    pytest.param(obj(http=obj(["port"], port={"type": "integer"})), {"http": "yes"},
                 "spec.http", 'must be of type object: "string"',
                 id="wrong_type_stops_descent"),
    pytest.param(obj(env=ENV), {"env": [{"name": "A", "valueFrom": {}}]},
                 "spec.env[0].valueFrom", 'unknown field "spec.env[0].valueFrom"',
                 id="unknown_field_in_a_list_item_has_an_indexed_path"),
    pytest.param(with_rules(obj(provider=STRING), {"rule": "self.provider != 'docker'"}),
                 {"provider": "docker"},
                 "spec", "Invalid value: failed rule: self.provider != 'docker'",
                 id="cel_rule_without_message_reports_the_rule"),
    pytest.param(with_rules(obj(provider=STRING, http=obj()),
                            {"rule": "self.provider != 'http' || has(self.http)",
                             "message": "http provider needs spec.http", "fieldPath": ".http"}),
                 {"provider": "http"},
                 "spec.http", "http provider needs spec.http",
                 id="cel_rule_message_and_field_path_are_used"),
    pytest.param(with_rules(obj(provider=STRING), {"rule": "self.provider =="}), {"provider": "pod"},
                 "spec", "rule compile error",
                 id="cel_compile_error_is_reported"),
    pytest.param(with_rules(obj(http=obj(port={"type": "integer"})), {"rule": "self.http.port > 0"}),
                 {"http": {}},
                 "spec", "no such key: port evaluating rule: self.http.port > 0",
                 id="cel_missing_key_is_a_runtime_error"),
    pytest.param(with_rules(obj(env=ENV), {"rule": "self.env.all(e, e.name.startsWith('AGENT_'))",
                                           "message": "env names must start with AGENT_"}),
                 {"env": [{"name": "AGENT_A"}, {"name": "PATH"}]},
                 "spec", "env names must start with AGENT_",
                 id="cel_all_macro_checks_every_item"),
    pytest.param(with_rules(obj(mode=STRING), {"rule": "!has(self.mode)", "reason": "FieldValueForbidden",
                                               "message": "mode is not supported yet"}),
                 {"mode": "fast"},
                 "spec", "Forbidden: mode is not supported yet",
                 id="cel_reason_selects_the_error_type"),
    pytest.param(with_rules(obj(replicas={"type": "integer"}),
                            {"rule": "self.replicas <= 3",
                             "messageExpression": "'replicas must be at most 3, got ' + string(self.replicas)"}),
                 {"replicas": 7},
                 "spec", "replicas must be at most 3, got 7",
                 id="cel_message_expression_is_evaluated"),
    pytest.param(with_rules(obj(name=STRING), {"rule": "self.name.lowerAscii() == self.name",
                                               "message": "lowercase only"}),
                 {"name": "Demo"},
                 "spec", "lowercase only",
                 id="cel_kubernetes_string_library_is_available"),
]


@pytest.mark.parametrize(("schema", "spec", "path", "fragment"), REJECTED)
def test_invalid_value_is_rejected_with_path_and_message(schema: dict, spec: Any, path: str,
                                                         fragment: str) -> None:
    error = only_error(errors_for(schema, spec))
    assert error.path == path
    assert fragment in error.message


def test_any_of_with_no_matching_schema_is_reported_as_the_server_words_it():
    # kube-openapi: no field, an empty value, then the errors of the closest branch (the first).
    schema = {**obj(a=STRING, b=STRING), "anyOf": [{"required": ["a"]}, {"required": ["b"]}]}
    assert [str(e) for e in errors_for(schema, {})] == [
        '<nil>: Invalid value: "": "spec" must validate at least one schema (anyOf)',
        "spec.a: Required value",
    ]


ACCEPTED = [
    pytest.param(obj(size={"x-kubernetes-int-or-string": True}), {"size": 1}, id="int_or_string_accepts_1"),
    pytest.param(obj(size={"x-kubernetes-int-or-string": True}), {"size": "1Gi"},
                 id="int_or_string_accepts_quantities"),
    pytest.param(obj(replicas={"type": "integer"}), {"replicas": 3.0}, id="integral_float_is_an_integer"),
    pytest.param(obj(name={**STRING, "nullable": True}), {"name": None}, id="nullable_accepts_null"),
    pytest.param(obj(name={**STRING, "maxLength": 5}), {"name": "ééééé"},
                 id="max_length_is_not_counted_in_bytes"),
    pytest.param(obj(name={**STRING, "pattern": "[0-9]"}), {"name": "ab1cd"},
                 id="pattern_is_searched_not_anchored"),
    pytest.param(obj(at={**STRING, "format": "date-time"}), {"at": "2024-05-01T10:00:00.123Z"},
                 id="rfc3339_timestamps_pass"),
    pytest.param(obj(at={**STRING, "format": "made-up"}), {"at": "anything"}, id="unknown_formats_pass"),
    pytest.param({**obj(a=STRING, b=STRING), "oneOf": [{"required": ["a"]}, {"required": ["b"]}]},
                 {"b": "y"}, id="one_of_accepts_exactly_one_match"),
    pytest.param(obj(tags={**TAGS, "x-kubernetes-list-type": "atomic"}), {"tags": ["a", "a"]},
                 id="atomic_lists_may_repeat_items"),
    pytest.param(with_rules(obj(provider=STRING, http=obj()),
                            {"rule": "self.provider != 'http' || has(self.http)"}),
                 {"provider": "http", "http": {}}, id="cel_has_sees_present_fields"),
    pytest.param(with_rules(obj(ratio={"type": "number"}), {"rule": "self.ratio == 1.0"}), {"ratio": 1},
                 id="cel_sees_numbers_as_doubles"),
    pytest.param(with_rules(obj(provider={**STRING, "enum": ["pod", "http"]}),
                            {"rule": "self.provider in ['pod', 'http'] && self.provider.matches('^[a-z]+$')"}),
                 {"provider": "pod"}, id="cel_in_and_matches_work"),
    pytest.param(with_rules(obj(provider=STRING), {"rule": "self.provider == oldSelf.provider"}),
                 {"provider": "pod"}, id="cel_transition_rules_are_skipped_on_create"),
]


@pytest.mark.parametrize(("schema", "spec"), ACCEPTED)
def test_valid_value_is_accepted(schema: dict, spec: Any) -> None:
    assert errors_for(schema, spec) == []


def test_unknown_field_is_reported_with_its_path() -> None:
    error = only_error(errors_for(obj(provider=STRING), {"provider": "pod", "foo": 1}))
    assert (error.path, error.type) == ("spec.foo", "Unknown field")
    assert str(error) == 'unknown field "spec.foo"'


def test_preserve_unknown_fields_keeps_unknowns_but_validates_known_properties() -> None:
    schema = obj(extra={"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                        "properties": {"level": {"type": "integer"}}})
    assert errors_for(schema, {"extra": {"anything": {"deep": [1]}}}) == []
    error = only_error(errors_for(schema, {"extra": {"anything": 1, "level": "high"}}))
    assert error.path == "spec.extra.level"


def test_prune_returns_a_pruned_copy_and_the_dropped_paths() -> None:
    validator = CRDValidator(crd(obj(env=ENV, extra={"type": "object",
                                                      "x-kubernetes-preserve-unknown-fields": True})))
    original = resource({"env": [{"name": "A", "bogus": 1}], "extra": {"kept": 1}, "foo": 2},
                        surprise="x")
    pruned, paths = validator.prune(original)
    assert paths == ["metadata.surprise", "spec.env[0].bogus", "spec.foo"]
    assert pruned["spec"] == {"env": [{"name": "A"}], "extra": {"kept": 1}}
    assert "surprise" not in pruned["metadata"]
    assert original["spec"]["foo"] == 2 and original["spec"]["env"][0]["bogus"] == 1


def test_cel_sees_the_pruned_object() -> None:
    schema = with_rules(obj(name=STRING), {"rule": "!has(self.foo)"})
    errors = errors_for(schema, {"name": "x", "foo": 1})
    assert [error.type for error in errors] == ["Unknown field"]


def test_transition_rule_is_enforced_on_update() -> None:
    schema = obj(provider=with_rules(STRING, {"rule": "self == oldSelf", "message": "provider is immutable"}))
    assert errors_for(schema, {"provider": "pod"}, old_spec={"provider": "pod"}) == []
    error = only_error(errors_for(schema, {"provider": "http"}, old_spec={"provider": "pod"}))
    # A rule on a scalar names its value (kube-apiserver 1.36; tests/api/invalid/77-* on both).
    assert (error.path, error.message) == ("spec.provider", 'Invalid value: "http": provider is immutable')


def test_a_rule_on_a_map_entry_reports_at_its_key_as_the_cel_validator_does() -> None:
    limits = {"type": "object", "additionalProperties": with_rules(STRING, {"rule": "self != 'x'", "message": "no x"})}
    error = only_error(errors_for(obj(limits=limits), {"limits": {"cpu": "x"}}))
    assert str(error) == 'spec.limits[cpu]: Invalid value: "x": no x'


def test_a_pattern_is_matched_as_re2_matches_it_so_a_trailing_newline_is_refused() -> None:
    schema = obj(image={"type": "string", "pattern": "^[!-~]+$"})
    assert errors_for(schema, {"image": "agent:1"}) == []
    error = only_error(errors_for(schema, {"image": "agent:1\n"}))
    assert error.message.startswith('Invalid value: "agent:1\\n": spec.image in body should match')


def test_quantity_library_compares_as_the_server_parses() -> None:
    rule = {"rule": "quantity(self).compareTo(quantity('2G')) <= 0", "message": "too big"}
    schema = obj(size=with_rules(STRING, rule))
    assert errors_for(schema, {"size": "2G"}) == []
    assert errors_for(schema, {"size": "1.8626Gi"}) == []  # 1,999,994,140.672 bytes
    assert only_error(errors_for(schema, {"size": "2Gi"})).message == 'Invalid value: "2Gi": too big'


def test_transition_rule_correlates_map_list_items_by_key() -> None:
    item = with_rules(ENV["items"], {"rule": "self.value == oldSelf.value", "message": "value is immutable"})
    schema = obj(env={**ENV, "items": item})
    old = {"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}
    new = {"env": [{"name": "B", "value": "2"}, {"name": "C", "value": "9"}, {"name": "A", "value": "5"}]}
    error = only_error(errors_for(schema, new, old_spec=old))
    assert error.path == "spec.env[2]"


def test_root_level_rule_prints_the_root_as_nil() -> None:
    validator = CRDValidator(crd(obj()))
    validator.schema["x-kubernetes-validations"] = [{"rule": "has(self.spec)", "message": "spec is required"}]
    error = only_error(validator.validate({k: v for k, v in resource({}).items() if k != "spec"}))
    assert str(error) == '<nil>: Invalid value: spec is required'


@pytest.mark.parametrize(("field", "value", "fragment"), [
    ("apiVersion", f"{GROUP}/v2", f"does not match the expected API version ({GROUP}/v1)"),
    ("apiVersion", "v1", "does not match the expected API version"),
    ("kind", "Pod", f"does not match the expected kind ({KIND})"),
])
def test_wrong_api_version_or_kind_is_rejected(field: str, value: str, fragment: str) -> None:
    error = only_error(CRDValidator(crd(obj())).validate({**resource({}), field: value}))
    assert error.path == field
    assert fragment in error.message


def test_missing_kind_is_required() -> None:
    body = {k: v for k, v in resource({}).items() if k != "kind"}
    assert [str(error) for error in CRDValidator(crd(obj())).validate(body)] == ["kind: Required value"]


@pytest.mark.parametrize(("metadata", "path", "fragment"), [
    ({"name": "Demo_1"}, "metadata.name", "a lowercase RFC 1123 subdomain must consist of"),
    ({"name": "-demo"}, "metadata.name", "must start and end with an alphanumeric character"),
    ({"name": "a" * 254}, "metadata.name", "must be no more than 253 characters"),
    ({"name": None}, "metadata.name", "name or generateName is required"),
    ({"namespace": "My.NS"}, "metadata.namespace", "a lowercase RFC 1123 label"),
    ({"labels": {"app": "x" * 64}}, "metadata.labels", "must be no more than 63 characters"),
    ({"labels": {"app": "has space"}}, "metadata.labels", "a valid label must be an empty string"),
    ({"labels": {"bad key": "x"}}, "metadata.labels", "name part must consist of alphanumeric"),
    ({"annotations": {"example.com/note": 5}}, "metadata.annotations[example.com/note]",
     "must be of type string"),
    ({"bogus": 1}, "metadata.bogus", 'unknown field "metadata.bogus"'),
])
def test_bad_metadata_is_rejected(metadata: dict, path: str, fragment: str) -> None:
    body = resource({})
    body["metadata"] = {k: v for k, v in {**body["metadata"], **metadata}.items() if v is not None}
    error = only_error(CRDValidator(crd(obj())).validate(body))
    assert error.path == path
    assert fragment in error.message


def test_generate_name_may_end_with_a_dash() -> None:
    body = resource({})
    body["metadata"] = {"generateName": "demo-", "labels": {"app.kubernetes.io/name": "demo"}}
    assert CRDValidator(crd(obj())).validate(body) == []


def test_all_errors_are_collected_in_document_order() -> None:
    schema = obj(["agent"], provider={**STRING, "enum": ["pod"]}, agent=obj(), replicas={"type": "integer"})
    errors = errors_for(schema, {"replicas": "two", "provider": "docker", "foo": 1})
    assert [error.path for error in errors] == ["spec.agent", "spec.replicas", "spec.provider", "spec.foo"]


def test_field_error_reads_like_the_api_server() -> None:
    error = only_error(errors_for(obj(provider={**STRING, "enum": ["pod", "http", "tmux"]}),
                                  {"provider": "docker"}))
    assert error.type == "Unsupported value"
    assert str(error) == 'spec.provider: Unsupported value: "docker": supported values: "pod", "http", "tmux"'


def test_validate_object_uses_the_version_named_by_api_version() -> None:
    definition = crd(obj(name=STRING), "v1", "v1alpha1")
    body = {**resource({"name": 1}), "apiVersion": f"{GROUP}/v1alpha1"}
    assert [error.path for error in validate_object(definition, body)] == ["spec.name"]
    assert CRDValidator(definition).version == "v1"
    with pytest.raises(ValueError):
        CRDValidator(definition, "v9")


def test_object_without_metadata_needs_a_name() -> None:
    body = {k: v for k, v in resource({}).items() if k != "metadata"}
    assert [str(error) for error in CRDValidator(crd(obj())).validate(body)] == [
        "metadata.name: Required value: name or generateName is required"]
