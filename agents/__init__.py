"""postlab.agents."""
