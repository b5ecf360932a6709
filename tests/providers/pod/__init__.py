"""Tests of the pod provider."""
