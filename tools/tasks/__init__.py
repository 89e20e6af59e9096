"""postlab.tools.tasks: task model, bundled generators, task folders and answer verifiers."""
