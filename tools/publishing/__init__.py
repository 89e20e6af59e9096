"""Publishing a run's best model (and its training data) to the Hugging Face Hub."""
