"""postlab.memory."""
