"""``wisp.renderer`` (test double)."""
