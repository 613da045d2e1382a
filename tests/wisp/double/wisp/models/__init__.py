"""``wisp.models`` (test double)."""
