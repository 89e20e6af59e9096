"""The switch that keeps postlab off the network (cheap to import: the CLI reads it at start)."""

# Set (by --offline, or by hand) to skip every network attempt.
OFFLINE_ENV = "POSTLAB_OFFLINE"
