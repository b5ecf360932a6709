"""The session wire (§7): what the runtime, the gateway, the operator and the CLI say to each other.

A session's runtime bridge serves one HTTP API; the gateway relays it to users, the operator reads
`/v1/info` from it and delivers the prompt through it, the CLI streams from it. Every rule of that
conversation lives here once, so the two ends cannot drift apart:

* `frames` — the event names and the pure functions on frames (tagging, seq, turns, replies);
* `sse` — Server-Sent Events: the one encoder, the parser, the response headers, keep-alives;
* `message_request` — a `POST /v1/messages` body and its optional `id` (one message, one turn);
* `session_ref` — the Kubernetes identity every frame carries;
* `runtime_info` — what `GET /v1/info` says;
* `runtime_client` — the one async client of a runtime, with a timeout per kind of call.

Sits beside `k8s`, below `providers`, `runtime` and `gateway`; imports only `api`, `config`,
`lifecycle` and libraries.
"""
