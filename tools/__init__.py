"""postlab.tools."""
