"""Tests of agent_sessions.dev, the embedded cluster, and of its agreement with a real API server."""
