"""Tests of agent_sessions.reconciler's parts (the reconcile itself runs in tests/handlers)."""
