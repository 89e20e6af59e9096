"""postlab.tools.io: atomic files, the run directory, the cached rate-limited HTTP client."""
