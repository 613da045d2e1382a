"""Test double of ``kaolin.render``."""
