"""A minimal ACP agent written against the wire, not the SDK: it sends exactly the JSON below.

Used to check that the bridge keeps what the agent wrote — `null` versus omitted in
`session_info_update`, update kinds the SDK does not know — instead of what a parsed model
would say.
"""

import json
import sys

UPDATES = [
    {"sessionUpdate": "session_info_update", "title": "First title", "_meta": {"a": 1, "b": 2}},
    {"sessionUpdate": "session_info_update", "title": None, "_meta": {"a": None}},
    {"sessionUpdate": "session_info_update", "_meta": {"c": 3}},
    {"sessionUpdate": "future_kind", "detail": {"x": 1}},
    {"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": "ok"}},
]


def send(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


for line in sys.stdin:
    request = json.loads(line)
    method, request_id = request.get("method"), request.get("id")
    if method == "initialize":
        send({"jsonrpc": "2.0", "id": request_id, "result": {"protocolVersion": 1, "agentCapabilities": {"loadSession": False}}})
    elif method == "session/new":
        send({"jsonrpc": "2.0", "id": request_id, "result": {"sessionId": "scripted-1"}})
    elif method == "session/prompt":
        for update in UPDATES:
            send({"jsonrpc": "2.0", "method": "session/update", "params": {"sessionId": "scripted-1", "update": update}})
        send({"jsonrpc": "2.0", "id": request_id, "result": {"stopReason": "end_turn"}})
    elif request_id is not None:
        send({"jsonrpc": "2.0", "id": request_id, "error": {"code": -32601, "message": "Method not found"}})
