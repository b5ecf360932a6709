"""`docs/provider-http.openapi.yaml` is a well-formed OpenAPI 3.0 document that describes what
the code does: its paths, states and error codes are the provider's constants, and the reference
server's answers validate against its schemas (jsonschema, with OpenAPI's `nullable`)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import pytest
import yaml

from agent_sessions.providers.http import constants as contract

from .conftest import TOKEN

ROOT = Path(__file__).resolve().parents[3]
DOCUMENT = yaml.safe_load((ROOT / "docs" / "provider-http.openapi.yaml").read_text(encoding="utf-8"))
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
EXPECTED_OPERATIONS = {
    ("get", "/v1/capabilities"),
    ("put", "/v1/sessions/{id}"),
    ("get", "/v1/sessions/{id}"),
    ("delete", "/v1/sessions/{id}"),
    ("post", "/v1/sessions/{id}:start"),
    ("post", "/v1/sessions/{id}:stop"),
    ("get", "/v1/sessions/{id}/logs"),
}


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def resolve(ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = DOCUMENT
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def json_schema(node: Any) -> Any:
    """An OpenAPI 3.0 schema as JSON Schema: `nullable: true` → a `null` alternative; refs to
    `#/components/schemas/X` → `#/$defs/X`."""
    if isinstance(node, list):
        return [json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: json_schema(value) for key, value in node.items() if key not in ("nullable", "example")}
    if "$ref" in converted:
        converted["$ref"] = converted["$ref"].replace("#/components/schemas/", "#/$defs/")
    if node.get("nullable"):
        if "type" in converted:
            converted["type"] = [converted["type"], "null"]
        if "enum" in converted:
            converted["enum"] = [*converted["enum"], None]
    return converted


def validator(name: str) -> jsonschema.Draft7Validator:
    schemas = DOCUMENT["components"]["schemas"]
    schema = {"$ref": f"#/$defs/{name}", "$defs": {key: json_schema(value) for key, value in schemas.items()}}
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())


def test_the_document_is_openapi_3_0_with_every_operation_of_the_contract():
    assert re.fullmatch(r"3\.0\.\d+", DOCUMENT["openapi"])
    assert DOCUMENT["info"]["title"] and DOCUMENT["info"]["version"] == "v1"
    operations = {(method, path) for path, item in DOCUMENT["paths"].items() for method in item if method in METHODS}
    assert operations == EXPECTED_OPERATIONS
    for path, item in DOCUMENT["paths"].items():
        assert path.startswith("/"), path
        params = {p.get("name") or resolve(p["$ref"])["name"] for p in item.get("parameters", [])}
        assert set(re.findall(r"{(\w+)}", path)) <= params, path
        for method, operation in item.items():
            if method not in METHODS:
                continue
            assert operation.get("operationId"), (method, path)
            statuses = set(operation["responses"])
            assert any(s.startswith("2") for s in statuses), (method, path)
            assert {"401", "429", "503"} <= statuses, (method, path)


def test_every_reference_resolves():
    for ref in refs(DOCUMENT):
        assert resolve(ref) is not None, ref


def test_every_schema_is_valid_json_schema():
    for name in DOCUMENT["components"]["schemas"]:
        validator(name)


def test_states_and_error_codes_are_the_providers_own():
    schemas = DOCUMENT["components"]["schemas"]
    assert tuple(schemas["Session"]["properties"]["state"]["enum"]) == contract.STATES
    codes = set(schemas["Error"]["properties"]["code"]["enum"])
    assert {contract.CODE_SESSION_NOT_FOUND, contract.CODE_SESSION_ALREADY_EXISTS, contract.CODE_PROVIDER_UNAVAILABLE,
            contract.CODE_INVALID_CONFIGURATION, contract.CODE_UNAUTHORIZED, contract.CODE_RATE_LIMITED} <= codes
    assert set(schemas["Capabilities"]["required"]) == {"streaming", "history", "logs", "resume", "cancel",
                                                       "resourceLimits"}
    paths = set(DOCUMENT["paths"])
    assert {contract.CAPABILITIES_PATH, contract.session_path("{id}"), contract.start_path("{id}"),
            contract.stop_path("{id}"), contract.logs_path("{id}")} == paths


@pytest.mark.parametrize(
    ("schema", "instance", "valid"),
    [
        ("Session", {"id": "x", "state": "Running", "ready": True, "endpoint": None}, True),
        ("Session", {"id": "x", "state": "Exploded", "ready": True}, False),
        ("Session", {"id": "x", "state": "Running"}, False),
        ("Error", {"code": "session_not_found", "message": "gone"}, True),
        ("Error", {"code": "nope", "message": "?"}, False),
        ("SessionRequest", {"agent": {"command": []}}, False),
    ],
)
def test_the_schemas_accept_and_reject_as_documented(schema, instance, valid):
    assert validator(schema).is_valid(instance) is valid


async def test_the_reference_servers_answers_match_the_document(platform):
    session_id = str(uuid.uuid4())
    body = {"session": {"namespace": "docs", "name": "check", "uid": session_id}, "agent": {"protocol": "acp"},
            "labels": {"agentsession.dev/session": "check"}}
    assert validator("SessionRequest").is_valid(body)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    session_url = f"{platform.url}/v1/sessions/{session_id}"
    async with aiohttp.ClientSession(headers=headers) as http:
        async def answer(method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
            async with http.request(method, url, **kwargs) as response:
                text = await response.text()
                is_json = text and response.content_type == "application/json"
                return response.status, json.loads(text) if is_json else text

        status, capabilities = await answer("GET", f"{platform.url}/v1/capabilities")
        validator("Capabilities").validate(capabilities)
        for method, url, kwargs, schema in [
            ("PUT", session_url, {"json": body}, "Session"),
            ("PUT", session_url, {"json": body}, "Session"),
            ("GET", session_url, {}, "Session"),
            ("POST", f"{session_url}:stop", {}, "Session"),
            ("POST", f"{session_url}:start", {}, "Session"),
            ("PUT", session_url, {"json": {"agent": {"command": "x"}}}, "Error"),
            ("PUT", session_url, {"json": {**body, "session": {"namespace": "other"}}}, "Error"),
            ("GET", f"{platform.url}/v1/sessions/{uuid.uuid4()}", {}, "Error"),
        ]:
            status, document = await answer(method, url, **kwargs)
            validator(schema).validate(document)
        status, _ = await answer("DELETE", session_url)
        assert status == 204
        async with aiohttp.ClientSession() as anonymous:
            async with anonymous.get(f"{platform.url}/v1/capabilities") as response:
                assert response.status == 401
                validator("Error").validate(await response.json())
