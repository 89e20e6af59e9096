"""postlab.cli."""
