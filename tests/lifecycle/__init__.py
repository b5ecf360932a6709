"""Tests of agent_sessions.lifecycle: decide(), conditions, health, session info."""
