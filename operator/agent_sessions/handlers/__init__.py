"""The operator: one level-based reconcile() and the thin kopf glue that calls it (§8)."""
