"""postlab.tools.evaluation: batched generation and scoring of checkpoints against a task."""
