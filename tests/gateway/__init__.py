"""Tests of agent_sessions.gateway; messaging/ runs everything end to end."""
