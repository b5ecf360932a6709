"""Tests of agent_sessions.runtime, the bridge in every session."""
