"""Tests of the http provider, its reference platform and the conformance kit."""
