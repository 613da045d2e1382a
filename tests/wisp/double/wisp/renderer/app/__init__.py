"""``wisp.renderer.app`` (test double)."""
