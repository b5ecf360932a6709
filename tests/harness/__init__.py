"""Tests of the test harness in tests/support: the real-cluster gate and the node simulator."""
