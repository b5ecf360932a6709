"""§7 session info folding: ACP `session_info_update` semantics, in order, bounded."""

import pytest

from agent_sessions.api import constants as c
from agent_sessions.api.session import SessionInfoStatus
from agent_sessions.lifecycle.session_info import fold_session_info, merge_meta

BASE = SessionInfoStatus(title="Fix login bug", updated_at="2026-11-01T10:00:00Z", meta={"turn": 1, "tag": "x"})


def wire(info: SessionInfoStatus) -> dict:
    return info.model_dump(by_alias=True, exclude_none=True)


@pytest.mark.parametrize(
    ("updates", "expected"),
    [
        pytest.param([], {"title": "Fix login bug", "updatedAt": "2026-11-01T10:00:00Z", "meta": {"turn": 1, "tag": "x"}}, id="no-updates-unchanged"),
        pytest.param([{}], {"title": "Fix login bug", "updatedAt": "2026-11-01T10:00:00Z", "meta": {"turn": 1, "tag": "x"}}, id="empty-update-unchanged"),
        pytest.param([{"title": "New"}], {"title": "New", "updatedAt": "2026-11-01T10:00:00Z", "meta": {"turn": 1, "tag": "x"}}, id="title-set-others-kept"),
        pytest.param([{"title": None}], {"updatedAt": "2026-11-01T10:00:00Z", "meta": {"turn": 1, "tag": "x"}}, id="title-null-clears"),
        pytest.param([{"updatedAt": None}], {"title": "Fix login bug", "meta": {"turn": 1, "tag": "x"}}, id="updatedAt-null-clears"),
        pytest.param([{"updatedAt": "yesterday-ish"}], {"title": "Fix login bug", "updatedAt": "yesterday-ish", "meta": {"turn": 1, "tag": "x"}}, id="updatedAt-kept-as-given"),
        pytest.param([{"_meta": {"turn": 2}}], {"title": "Fix login bug", "updatedAt": "2026-11-01T10:00:00Z", "meta": {"turn": 2, "tag": "x"}}, id="meta-merged-key-by-key"),
        pytest.param([{"_meta": {"new": [1, 2]}}], {"title": "Fix login bug", "updatedAt": "2026-11-01T10:00:00Z", "meta": {"turn": 1, "tag": "x", "new": [1, 2]}}, id="meta-key-added"),
        pytest.param([{"_meta": {"tag": None}}], {"title": "Fix login bug", "updatedAt": "2026-11-01T10:00:00Z", "meta": {"turn": 1}}, id="meta-key-null-removes-key"),
        pytest.param([{"_meta": None}], {"title": "Fix login bug", "updatedAt": "2026-11-01T10:00:00Z"}, id="meta-null-clears-all"),
        pytest.param([{"_meta": {"turn": None, "tag": None}}], {"title": "Fix login bug", "updatedAt": "2026-11-01T10:00:00Z"}, id="removing-every-key-clears-meta"),
        pytest.param([{"_meta": {"turn": 2}}, {"_meta": {"turn": 3}}, {"title": "B"}, {"title": "C"}], {"title": "C", "updatedAt": "2026-11-01T10:00:00Z", "meta": {"turn": 3, "tag": "x"}}, id="updates-applied-in-order"),
        pytest.param([{"_meta": None}, {"_meta": {"a": 1}}], {"title": "Fix login bug", "updatedAt": "2026-11-01T10:00:00Z", "meta": {"a": 1}}, id="clear-then-set"),
        pytest.param([{"_meta": {"nested": {"a": 1}}}, {"_meta": {"nested": {"b": 2}}}], {"title": "Fix login bug", "updatedAt": "2026-11-01T10:00:00Z", "meta": {"turn": 1, "tag": "x", "nested": {"b": 2}}}, id="nested-values-replaced-whole"),
    ],
)
def test_session_info_update_semantics(updates, expected):
    result = fold_session_info(BASE, updates)
    assert wire(result.info) == expected
    assert result.rejected == ()


def test_fold_starts_from_empty_info_when_there_is_none():
    result = fold_session_info(None, [{"title": "T", "_meta": {"k": "v"}}])
    assert wire(result.info) == {"title": "T", "meta": {"k": "v"}}


def test_fold_does_not_mutate_the_current_info():
    current = BASE.model_copy(deep=True)
    fold_session_info(current, [{"_meta": {"tag": None}}, {"title": None}])
    assert current == BASE


@pytest.mark.parametrize(
    ("update", "reason"),
    [
        pytest.param({"_meta": {f"k{i}": i for i in range(c.MAX_META_PROPERTIES + 1)}}, "_meta would have 67 keys; at most 64 are allowed", id="too-many-meta-keys-counted-after-merge"),
        pytest.param({"_meta": {"blob": "x" * c.MAX_META_BYTES}}, "_meta would be 16414 bytes; at most 16384 are allowed", id="meta-too-many-bytes-counted-after-merge"),
        pytest.param({"title": "t" * (c.MAX_TITLE_LENGTH + 1)}, "title is 257 characters long; at most 256 are allowed", id="title-too-long"),
        pytest.param({"title": 42}, "title must be a string or null, got int", id="title-wrong-type"),
        pytest.param({"_meta": ["a"]}, "_meta must be an object or null, got list", id="meta-wrong-type"),
        pytest.param({"updatedAt": 1700000000}, "updatedAt must be a string or null, got int", id="updatedAt-wrong-type"),
        pytest.param("not an object", "expected an object, got str", id="not-an-object"),
    ],
)
def test_invalid_or_oversize_update_is_rejected_whole_with_a_reason(update, reason):
    result = fold_session_info(BASE, [{"title": "before"}, update, {"_meta": {"after": True}}])
    assert [str(r) for r in result.rejected] == [f"session_info_update #1 rejected: {reason}"]
    # Rejected whole: nothing of it applied; the updates around it still apply, in order.
    assert wire(result.info) == {
        "title": "before",
        "updatedAt": "2026-11-01T10:00:00Z",
        "meta": {"turn": 1, "tag": "x", "after": True},
    }


def test_meta_at_exactly_the_bounds_is_accepted():
    at_limit = {f"k{i}": i for i in range(c.MAX_META_PROPERTIES)}
    result = fold_session_info(None, [{"_meta": at_limit}])
    assert result.rejected == ()
    assert result.info.meta == at_limit


def test_oversize_meta_is_measured_after_the_merge_not_per_update():
    half = {"a": "x" * (c.MAX_META_BYTES // 2)}
    other = {"b": "y" * (c.MAX_META_BYTES // 2)}
    result = fold_session_info(None, [{"_meta": half}, {"_meta": other}])
    assert len(result.rejected) == 1 and result.rejected[0].index == 1
    assert result.info.meta == half


@pytest.mark.parametrize(
    ("current", "patch", "expected"),
    [
        (None, {"a": 1}, {"a": 1}),
        ({"a": 1}, {}, {"a": 1}),
        ({"a": 1}, None, None),
        ({"a": 1}, {"a": None}, None),
        ({"a": 1, "b": 2}, {"a": None, "c": 3}, {"b": 2, "c": 3}),
        ({"a": 1}, {"missing": None}, {"a": 1}),
    ],
)
def test_merge_meta_table(current, patch, expected):
    assert merge_meta(current, patch) == expected
