"""A scripted chat model for tests: replays replies, records what it was sent."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field, PrivateAttr


class ScriptedChatModel(BaseChatModel):
    """A chat model that replays scripted replies (or asks a function); for tests and dry runs."""

    script: Any
    model_name: str = "scripted"
    received: list[list[BaseMessage]] = Field(default_factory=list)
    bound: list[list[str]] = Field(default_factory=list)
    _index: int = PrivateAttr(default=0)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs: Any) -> ChatResult:
        self.received.append(list(messages))
        self.bound.append(list(kwargs.get("tools") or []))
        if callable(self.script):
            reply = self.script(list(messages))
        else:
            # Past the end of the script the last reply repeats, like a stuck model.
            reply = self.script[min(self._index, len(self.script) - 1)]
            self._index += 1
        message = reply if isinstance(reply, AIMessage) else AIMessage(content=str(reply))
        prompt = sum(len(str(m.content)) for m in messages) // 4 + 1
        answer = len(str(message.content)) // 4 + 8 * len(message.tool_calls) + 1
        message = message.model_copy(
            update={
                "usage_metadata": {
                    "input_tokens": prompt,
                    "output_tokens": answer,
                    "total_tokens": prompt + answer,
                },
                "response_metadata": {"model_name": self.model_name},
            }
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def bind_tools(self, tools, *, tool_choice=None, **kwargs: Any):
        """Accept any tools; the script decides what gets called."""
        return self.bind(tools=[convert_to_openai_tool(t)["function"]["name"] for t in tools])

    def last_prompt(self) -> str:
        """All text of the latest call, for assertions on what the model saw."""
        return "\n".join(str(m.content) for m in (self.received[-1] if self.received else []))
