"""Test double of ``kaolin.ops``."""
