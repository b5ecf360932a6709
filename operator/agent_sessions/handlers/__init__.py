"""The operator's thin kopf glue: kopf events become calls to `reconciler` (§8), plus settings."""
