"""Test double of Kaolin: the structured-point-cloud (SPC) helpers Wisp's octree uses."""
