"""postlab.agents.llm: chat models drive the agents through the same tools as their playbooks."""
