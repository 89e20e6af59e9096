"""The four agents' playbook bodies and system prompts, by agent name."""

from __future__ import annotations

from postlab.agents import data_engineer, evaluator, librarian, trainer
from postlab.agents.base import AgentBody
from postlab.records.run import AgentName

PLAYBOOKS: dict[AgentName, AgentBody] = {
    "librarian": librarian.research,
    "data_engineer": data_engineer.build_dataset,
    "trainer": trainer.train,
    "evaluator": evaluator.evaluate,
}
SYSTEM_PROMPTS: dict[AgentName, str] = {
    "librarian": librarian.SYSTEM_PROMPT,
    "data_engineer": data_engineer.SYSTEM_PROMPT,
    "trainer": trainer.SYSTEM_PROMPT,
    "evaluator": evaluator.SYSTEM_PROMPT,
}
