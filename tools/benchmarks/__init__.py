"""Standard benchmarks through lm-evaluation-harness: its prompts, splits and metrics."""
