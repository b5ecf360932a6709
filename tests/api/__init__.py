"""Tests of agent_sessions.api: the models, the generated CRDs and the invalid-manifest corpus."""
