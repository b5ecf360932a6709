"""The audit log reader the real-cluster tests count requests with."""

import json

from support.cluster.audit import AuditLog, read_since


def event(name: str, reason: str = 'RBAC: allowed by ClusterRoleBinding "x" of ClusterRole "y" to User "z"') -> bytes:
    return json.dumps({
        "stage": "ResponseComplete", "verb": "get", "user": {"username": "op"},
        "objectRef": {"resource": "pods", "name": name, "namespace": "default"},
        "responseStatus": {"code": 200},
        "annotations": {"authorization.k8s.io/reason": reason},
    }).encode() + b"\n"


def test_an_offset_taken_inside_a_line_skips_that_line_instead_of_parsing_its_tail(tmp_path):
    # The apiserver's file grows page by page while it writes one event: an offset read then
    # (CI saw 'r\\""}}' as a "line") falls inside a request logged before the offset.
    path = tmp_path / "audit.log"
    first, second = event("before"), event("after")
    path.write_bytes(first + second)
    for cut in (1, len(first) // 2, len(first) - 1):
        assert [r.name for r in read_since(path, cut)] == ["after"]
    assert [r.name for r in read_since(path, len(first))] == ["after"]
    assert [r.name for r in read_since(path, 0)] == ["before", "after"]


def test_a_line_still_being_written_is_left_for_the_next_read(tmp_path):
    path = tmp_path / "audit.log"
    whole, partial = event("whole"), event("partial")
    path.write_bytes(whole + partial[:40])
    log = AuditLog(path)
    assert [r.name for r in log.records()] == ["whole"]
    path.write_bytes(whole + partial)
    assert [r.name for r in log.records()] == ["whole", "partial"]
    log.reset()
    assert log.records() == []
