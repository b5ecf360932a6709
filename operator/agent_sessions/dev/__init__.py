"""Local development support: the embedded Kubernetes API and its admission checks."""
