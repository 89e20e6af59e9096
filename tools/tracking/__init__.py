"""Experiment trackers: where training metrics and evaluations are logged (wandb, Trackio)."""
