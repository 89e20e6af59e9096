"""Mapping a Hub dataset's columns onto prompt/answer examples (plain columns or chat turns)."""

from __future__ import annotations

from collections.abc import Set
from typing import Any, Literal

from pydantic import BaseModel

from postlab.tools.tasks.catalog import Example

_PROMPTS = ("prompt", "question", "instruction", "problem", "query", "input", "text")


_ANSWERS = ("answer", "completion", "response", "output", "solution", "target", "final_answer")


_MESSAGES = ("messages", "conversations", "conversation", "chat", "dialog")

_USER, _ASSISTANT = {"user", "human"}, {"assistant", "gpt", "model"}


class HubDatasetError(ValueError):
    """A dataset that exists nowhere, or cannot be used as asked."""


class ColumnMappingError(HubDatasetError):
    """No TRL format fits a dataset's columns."""


class ColumnMapping(BaseModel):
    """Which columns feed which TRL format (prompt/answer, messages, or preference pairs)."""

    format: Literal["prompt_answer", "messages", "preference"]
    prompt: str | None = None
    answer: str | None = None
    context: str | None = None
    messages: str | None = None
    chosen: str | None = None
    rejected: str | None = None


def _pick(
    columns: list[str], names: tuple[str, ...], exclude: Set[str] = frozenset()
) -> str | None:
    lower = {c.lower(): c for c in columns if c not in exclude}
    return next((lower[n] for n in names if n in lower), None)


def _turns(value: Any) -> list[tuple[str, str]]:
    if not isinstance(value, list):
        return []
    out = []
    for turn in value:
        if isinstance(turn, dict):
            role = turn.get("role", turn.get("from"))
            content = turn.get("content", turn.get("value"))
            if isinstance(role, str) and isinstance(content, str):
                out.append((role.lower(), content))
    return out


def _text(value: Any) -> str:
    turns = _turns(value)
    if turns:
        return next((c for r, c in reversed(turns) if r in _ASSISTANT), turns[-1][1])
    return "" if value is None else str(value).strip()


def map_columns(features: dict[str, str] | list[str], rows: list[dict[str, Any]]) -> ColumnMapping:
    """Choose TRL columns (preference > messages > prompt/answer) and check them on sample rows."""
    columns = list(features)
    chosen, rejected = _pick(columns, ("chosen",)), _pick(columns, ("rejected",))
    messages = _pick(columns, _MESSAGES)
    prompt = _pick(columns, _PROMPTS)
    if prompt and prompt.lower() == "input" and _pick(columns, ("instruction",)):
        prompt = _pick(columns, ("instruction",))
    answer = _pick(columns, _ANSWERS, exclude={prompt} if prompt else set())
    if chosen and rejected:
        mapping = ColumnMapping(
            format="preference", prompt=prompt, chosen=chosen, rejected=rejected
        )
    elif messages:
        mapping = ColumnMapping(format="messages", messages=messages)
    elif prompt and answer:
        context = _pick(columns, ("input", "context"), exclude={prompt, answer})
        mapping = ColumnMapping(
            format="prompt_answer", prompt=prompt, answer=answer, context=context
        )
    else:
        raise ColumnMappingError(
            f"no TRL format fits columns {columns}: expected chosen+rejected, a messages column "
            f"({', '.join(_MESSAGES)}), or a prompt ({', '.join(_PROMPTS)}) with an answer "
            f"({', '.join(_ANSWERS)})"
        )
    for index, row in enumerate(rows):
        if mapping.format == "messages":
            roles = {r for r, _ in _turns(row.get(mapping.messages))}
            if not (roles & _USER and roles & _ASSISTANT):
                raise ColumnMappingError(
                    f"column {mapping.messages!r} of row {index} lacks a user and an assistant turn"
                )
            continue
        named = (mapping.prompt, mapping.answer, mapping.chosen, mapping.rejected)
        needed = [c for c in named if c]
        empty = [c for c in needed if not _text(row.get(c))]
        if empty:
            raise ColumnMappingError(f"row {index} has empty {empty} (columns {columns})")
    return mapping


def rows_to_examples(rows: list[dict[str, Any]], mapping: ColumnMapping) -> list[Example]:
    """Rows as prompt/answer Examples (a preference pair keeps its chosen answer)."""
    examples = []
    for row in rows:
        if mapping.format == "messages":
            turns = _turns(row.get(mapping.messages))
            last = max((i for i, (r, _) in enumerate(turns) if r in _ASSISTANT), default=-1)
            users = [c for r, c in turns[:last] if r in _USER]
            prompt, answer = (users[-1], turns[last][1]) if last > 0 and users else ("", "")
        elif mapping.format == "preference":
            chosen = row.get(mapping.chosen)
            turns = _turns(chosen)
            users = [c for r, c in turns if r in _USER]
            prompt = _text(row.get(mapping.prompt)) if mapping.prompt else (users or [""])[-1]
            answer = _text(chosen)
        else:
            prompt, answer = _text(row.get(mapping.prompt)), _text(row.get(mapping.answer))
            context = _text(row.get(mapping.context)) if mapping.context else ""
            prompt = f"{prompt}\n\n{context}" if context else prompt
        if prompt and answer:
            examples.append(Example(prompt=prompt, answer=answer))
    return examples
