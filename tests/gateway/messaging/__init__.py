"""Messaging end to end: embedded API, pod runner, operator, gateway, runtime bridges and agents."""
