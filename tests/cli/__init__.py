"""Tests of agent_sessions.cli: the agent-sessions command as a user runs it."""
