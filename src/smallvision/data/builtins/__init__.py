"""Offline datasets built from what installed packages ship; each registers itself in ``BUILTINS``."""
