"""Tests of agent_sessions.providers: the protocol, redaction, each provider, and the contract suite all pass."""
