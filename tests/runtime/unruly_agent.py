"""An ACP agent that misbehaves on request, written against the wire (exact bytes, no SDK).

What a prompt's text contains decides what it does:

* `garbage` — sends updates whose strings hold lone surrogates (`\\ud800` escapes), control
  characters, U+2028/U+0085 and a NaN, a title with ESC and a lone surrogate, and a line that is
  not UTF-8, then ends the turn normally;
* `hang` — never answers the prompt and ignores `session/cancel` (later prompts are answered);
* `die` — sends one chunk, then exits with code 7 in the middle of the turn;
* anything else — replies `ok`.
"""

import sys

SESSION_ID = "unruly-1"

GARBAGE = [
    '{"sessionUpdate":"agent_message_chunk","content":{"type":"text","text":"lone \\ud800 surrogate"}}',
    '{"sessionUpdate":"agent_message_chunk","content":{"type":"text","text":"ctl \\u0000\\u001b[31m\\u0007 '
    'ls\\u2028ps\\u2029nel\\u0085del\\u007f end"}}',
    '{"sessionUpdate":"agent_message_chunk","content":{"type":"text","text":"pair \\ud83d\\ude00 ok"},'
    '"_meta":{"\\udfffkey":NaN}}',
    '{"sessionUpdate":"session_info_update","title":"\\u001b]0;pwned\\u0007 \\udc00 title"}',
]


def send(raw: str) -> None:
    sys.stdout.buffer.write(raw.encode("ascii") + b"\n")
    sys.stdout.buffer.flush()


def update(request_id: object, body: str) -> None:
    send('{"jsonrpc":"2.0","method":"session/update","params":{"sessionId":"%s","update":%s}}' % (SESSION_ID, body))


def result(request_id: object, body: str) -> None:
    send('{"jsonrpc":"2.0","id":%s,"result":%s}' % (request_id, body))


def chunk(text: str) -> str:
    return '{"sessionUpdate":"agent_message_chunk","content":{"type":"text","text":"%s"}}' % text


def main() -> None:
    import json

    for line in sys.stdin:
        request = json.loads(line)
        method, request_id = request.get("method"), request.get("id")
        if method == "initialize":
            result(request_id, '{"protocolVersion":1,"agentCapabilities":{"loadSession":false}}')
        elif method == "session/new":
            result(request_id, '{"sessionId":"%s"}' % SESSION_ID)
        elif method == "session/prompt":
            text = " ".join(block.get("text", "") for block in request["params"]["prompt"])
            if "garbage" in text:
                for body in GARBAGE:
                    update(request_id, body)
                sys.stdout.buffer.write(b"\xff\xfe not utf-8\n")
                sys.stdout.buffer.flush()
                result(request_id, '{"stopReason":"end_turn"}')
            elif "hang" in text:
                continue
            elif "die" in text:
                update(request_id, chunk("about to die"))
                sys.stderr.write("unruly agent: dying mid-turn\n")
                sys.stderr.flush()
                sys.exit(7)
            else:
                update(request_id, chunk("ok"))
                result(request_id, '{"stopReason":"end_turn"}')
        elif method == "session/cancel":
            continue  # ignored on purpose
        elif request_id is not None:
            send('{"jsonrpc":"2.0","id":%s,"error":{"code":-32601,"message":"Method not found"}}' % json.dumps(request_id))


if __name__ == "__main__":
    main()
