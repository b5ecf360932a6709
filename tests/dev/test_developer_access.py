"""The dev user of `agent-sessions dev` (agent_sessions.dev.strict_api.developer): kubectl's
token-less requests are served as the admin, the developer's token gets exactly its RBAC, and
TokenReview and SubjectAccessReview — what the gateway asks — answer for it."""

from __future__ import annotations

import json
import stat
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_sessions.api.crd import session_crd, template_crd
from agent_sessions.dev.strict_api import (
    DEVELOPER,
    VIEWER,
    StrictKubernetesAPI,
    developer_access,
    developer_token,
    running_api,
)

TIER = "embedded"

TOKEN = "d" * 43
VIEWER_TOKEN = "v" * 43
SESSIONS = "/apis/agentsession.dev/v1alpha1/namespaces/default/agentsessions"
SECRETS = "/api/v1/namespaces/default/secrets"


@pytest.fixture(scope="module")
def api() -> Iterator[StrictKubernetesAPI]:
    with running_api(crds=[session_crd(), template_crd()], **developer_access(TOKEN, VIEWER_TOKEN)) as server:
        yield server


def call(api: StrictKubernetesAPI, method: str, path: str, token: str | None = None,
         body: dict | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(api.url + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def review(api: StrictKubernetesAPI, resource: str, user: str = DEVELOPER,
           groups: tuple[str, ...] = ("agent-sessions:developers",), **attributes: str) -> dict:
    body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": user, "groups": [*groups, "system:authenticated"],
                     "resourceAttributes": {"namespace": "default", "resource": resource, **attributes}}}
    code, answer = call(api, "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", body=body)
    assert code == 201, answer
    return answer["status"]


def test_requests_without_a_token_are_served_as_the_admin_as_kubectl_sends_none_over_http(api):
    assert call(api, "GET", SECRETS)[0] == 200
    assert call(api, "GET", "/api/v1/namespaces")[0] == 200


def test_an_unknown_token_is_refused(api):
    assert call(api, "GET", SESSIONS, token="not-the-developer")[0] == 401


def test_the_developer_may_use_sessions_but_not_read_secrets(api):
    assert call(api, "GET", SESSIONS, token=TOKEN)[0] == 200
    assert call(api, "GET", "/api/v1/namespaces/default/pods", token=TOKEN)[0] == 200
    code, refused = call(api, "GET", SECRETS, token=TOKEN)
    assert code == 403
    assert refused["message"] == ('secrets is forbidden: User "developer" cannot list resource "secrets" in API '
                                  'group "" in the namespace "default"')


def test_token_review_says_the_token_is_the_developer(api):
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": TOKEN}}
    code, answer = call(api, "POST", "/apis/authentication.k8s.io/v1/tokenreviews", body=body)
    assert code == 201
    assert answer["status"]["authenticated"] is True
    assert answer["status"]["user"] == {"username": DEVELOPER,
                                        "groups": ["agent-sessions:developers", "system:authenticated"]}


@pytest.mark.parametrize(("verb", "resource", "subresource", "allowed"), [
    ("list", "agentsessions", "", True),
    ("get", "agentsessions", "", True),
    ("create", "agentsessions", "messages", True),
    ("create", "agentsessions", "cancel", True),
    ("delete", "agentsessions", "", True),
    ("get", "secrets", "", False),
])
def test_access_reviews_answer_what_the_gateway_asks_about_the_developer(api, verb, resource, subresource, allowed):
    group = "agentsession.dev" if resource == "agentsessions" else ""
    status = review(api, resource, verb=verb, group=group, subresource=subresource, name="demo")
    assert status["allowed"] is allowed, status


@pytest.mark.parametrize(("verb", "resource", "subresource", "allowed"), [
    ("get", "agentsessions", "", True),
    ("list", "agentsessions", "", True),
    ("watch", "agentsessions", "", True),
    ("patch", "agentsessions", "", False),
    ("create", "agentsessions", "messages", False),
    ("create", "agentsessions", "cancel", False),
    ("list", "sessiontemplates", "", False),
    ("get", "pods", "", False),
])
def test_the_viewer_may_only_read_sessions(api, verb, resource, subresource, allowed):
    group = "agentsession.dev" if resource.startswith(("agentsessions", "sessiontemplates")) else ""
    status = review(api, resource, user=VIEWER, groups=("agent-sessions:viewers",), verb=verb, group=group,
                    subresource=subresource, name="demo")
    assert status["allowed"] is allowed, status


def test_the_viewer_token_is_the_viewer_and_may_not_patch_a_session(api):
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": VIEWER_TOKEN}}
    code, answer = call(api, "POST", "/apis/authentication.k8s.io/v1/tokenreviews", body=body)
    assert code == 201 and answer["status"]["user"] == {
        "username": VIEWER, "groups": ["agent-sessions:viewers", "system:authenticated"]}
    assert call(api, "GET", SESSIONS, token=VIEWER_TOKEN)[0] == 200
    assert call(api, "GET", "/api/v1/namespaces/default/pods", token=VIEWER_TOKEN)[0] == 403


def test_the_viewer_token_must_differ_from_the_developer_token():
    with pytest.raises(ValueError, match="must differ"):
        developer_access(TOKEN, TOKEN)


def test_the_token_is_kept_private_and_the_same_across_runs(tmp_path: Path):
    path = tmp_path / ".dev" / "token"
    token = developer_token(path)
    assert len(token) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert developer_token(path) == token
    path.write_text("too-short\n")
    path.chmod(0o644)
    replaced = developer_token(path)
    assert replaced != token and len(replaced) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_tokenless_admin_needs_tokens():
    with pytest.raises(ValueError, match="tokenless_admin needs tokens"):
        StrictKubernetesAPI(tokenless_admin=True)


def test_without_tokenless_admin_a_request_without_a_token_is_still_refused():
    with running_api(tokens={TOKEN: (DEVELOPER, [])}) as server:
        assert call(server, "GET", SESSIONS)[0] == 401
