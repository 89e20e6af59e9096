"""postlab.tools: the outside world by domain: papers, tasks, data, training, evaluation, io."""
