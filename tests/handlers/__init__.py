"""Tests of the operator end to end (agent_sessions.handlers and the reconciler under kopf), on both backends."""
