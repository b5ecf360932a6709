"""The `agent-sessions` command line."""
