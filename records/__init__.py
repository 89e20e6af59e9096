"""postlab.records: state records, events and schemas; the leaf that imports nothing above it."""
