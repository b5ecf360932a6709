"""The operator with a session whose pod really runs on a real API server (its own control plane)."""
