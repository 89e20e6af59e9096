"""postlab.tools.reporting: the run's markdown report and score plot, written to disk."""
