"""Test double of Kaolin-Wisp (``main`` at 931707e); see ``tests/wisp/double/README.md``."""
