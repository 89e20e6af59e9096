"""postlab.tools.training: specs, the subprocess runner and worker, TRL set-up, failures."""
