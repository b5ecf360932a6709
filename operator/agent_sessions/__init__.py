"""agent-session-operator: AI agent sessions as Kubernetes resources."""

__version__ = "0.1.0"
