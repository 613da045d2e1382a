"""``wisp.renderer.core`` (test double)."""
