"""Bearer tokens, the identity TokenReview reports, and the SubjectAccessReview asked for it."""

from __future__ import annotations

import base64

from agent_sessions.gateway.authn import Caller, bearer_token, caller_from_status, token_key
from agent_sessions.gateway.authz import LIST, READ, SEND, access_review


def test_bearer_token_from_the_authorization_header():
    assert bearer_token({"Authorization": "Bearer abc.def"}) == "abc.def"
    assert bearer_token({"Authorization": "bearer  abc "}) == "abc"
    assert bearer_token({"Authorization": "Basic YTpi"}) is None
    assert bearer_token({"Authorization": "Bearer"}) is None
    assert bearer_token({}) is None


def test_bearer_token_from_a_websocket_subprotocol():
    encoded = base64.urlsafe_b64encode(b"tok-en?").decode().rstrip("=")
    protocols = ["agent-sessions.v1", f"base64url.bearer.authorization.k8s.io.{encoded}"]
    assert bearer_token({}, protocols) == "tok-en?"
    assert bearer_token({"Authorization": "Bearer header-wins"}, protocols) == "header-wins"
    assert bearer_token({}, ["base64url.bearer.authorization.k8s.io.!!!"]) is None


def test_tokens_are_cached_by_hash_only():
    key = token_key("secret-token")
    assert "secret" not in key and len(key) == 64


def test_caller_from_a_token_review_status():
    status = {"authenticated": True, "user": {"username": "alice", "groups": ["devs", "system:authenticated"],
                                              "uid": "42", "extra": {"scopes": ["b", "a"]}}}
    assert caller_from_status(status) == Caller("alice", ("devs", "system:authenticated"), "42",
                                                (("scopes", ("b", "a")),))
    assert caller_from_status({"authenticated": False, "user": {}}) is None
    assert caller_from_status(None) is None


def test_access_reviews_ask_about_the_named_session_for_the_callers_whole_identity():
    caller = Caller("alice", ("devs",), "42", (("scopes", ("x",)),))
    review = access_review(caller, SEND, "team-a", "demo")
    assert review["kind"] == "SubjectAccessReview"
    assert review["spec"] == {
        "user": "alice", "groups": ["devs"], "uid": "42", "extra": {"scopes": ["x"]},
        "resourceAttributes": {"namespace": "team-a", "verb": "create", "group": "agentsession.dev",
                               "version": "v1alpha1", "resource": "agentsessions", "subresource": "messages",
                               "name": "demo"}}
    read = access_review(Caller("bob"), READ, "team-a", "demo")["spec"]["resourceAttributes"]
    assert (read["verb"], read.get("subresource"), read["name"]) == ("get", None, "demo")
    listing = access_review(Caller("bob"), LIST, "team-a")["spec"]["resourceAttributes"]
    assert listing["verb"] == "list" and "name" not in listing
