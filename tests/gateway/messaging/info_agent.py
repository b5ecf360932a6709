"""An ACP agent written against the wire: turn 1 sets a title and `_meta`, turn 2 clears the
title with `null`, removes one `_meta` key with `null` and adds another (SDK-built agents cannot
send `null`: the SDK drops it)."""

import json
import sys

TURNS = [
    [{"sessionUpdate": "session_info_update", "title": "First title", "_meta": {"a": 1, "b": 2}}],
    [{"sessionUpdate": "session_info_update", "title": None, "_meta": {"a": None, "c": 3}}],
]


def send(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


turn = 0
for line in sys.stdin:
    request = json.loads(line)
    method, request_id = request.get("method"), request.get("id")
    if method == "initialize":
        send({"jsonrpc": "2.0", "id": request_id, "result": {"protocolVersion": 1, "agentCapabilities": {"loadSession": False}}})
    elif method == "session/new":
        send({"jsonrpc": "2.0", "id": request_id, "result": {"sessionId": "info-1"}})
    elif method == "session/prompt":
        for update in TURNS[min(turn, len(TURNS) - 1)] + [
            {"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": f"turn {turn + 1}"}}
        ]:
            send({"jsonrpc": "2.0", "method": "session/update", "params": {"sessionId": "info-1", "update": update}})
        turn += 1
        send({"jsonrpc": "2.0", "id": request_id, "result": {"stopReason": "end_turn"}})
    elif request_id is not None:
        send({"jsonrpc": "2.0", "id": request_id, "error": {"code": -32601, "message": "Method not found"}})
