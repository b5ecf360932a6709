"""Tests of the tmux provider, on a private tmux server."""
