"""Typed answers from any chat model: its own structured output, else a tool named after the
schema (some integrations, e.g. ChatHuggingFace, take no pydantic schema but bind tools)."""

from __future__ import annotations

import functools
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import BaseModel, ValidationError


def parse_tool_answer(schema: type[BaseModel], raw: Any) -> dict[str, Any]:
    """A with_structured_output(include_raw=True) result, read from a call of the schema's tool."""
    calls = [c for c in getattr(raw, "tool_calls", None) or [] if c["name"] == schema.__name__]
    if not calls:
        return {"raw": raw, "parsed": None, "parsing_error": f"no {schema.__name__} call"}
    try:
        return {"raw": raw, "parsed": schema.model_validate(calls[0]["args"])}
    except ValidationError as error:
        return {"raw": raw, "parsed": None, "parsing_error": error}


def structured(model: BaseChatModel, schema: type[BaseModel]) -> Runnable:
    """A runnable answering {raw, parsed, parsing_error} with `parsed` an instance of `schema`."""
    try:
        return model.with_structured_output(schema, include_raw=True)
    except NotImplementedError:
        return model.bind_tools([schema]) | RunnableLambda(
            functools.partial(parse_tool_answer, schema)
        )
