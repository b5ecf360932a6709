"""Tests of agent_sessions.wire: frames, SSE, the message request, the runtime client."""
