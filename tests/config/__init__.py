"""Tests of agent_sessions.config: template chains, precedence, locks, durations."""
