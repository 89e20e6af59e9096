"""How large a run's pieces are: the sequence length fitted to the data, and the rows a process
takes at once fitted to its memory."""

from __future__ import annotations

from typing import Any

from postlab.records.artifacts import PREFERENCE_METHODS
from postlab.tools.training.devices import (
    STATE_BYTES_PER_TRAINABLE,
    free_bytes_per_process,
    micro_batch,
    row_activation_bytes,
)
from postlab.tools.training.spec import TrainingSpec

# Sequence lengths are fitted in steps of this many tokens, reading at most this many rows.
LENGTH_STEP = 64
LENGTH_SAMPLE = 5000


def _row_tokens(row: dict[str, Any], tokenizer) -> int:
    """Tokens of a row's longest full conversation (prompt with its completion or either answer)."""
    prompt = row.get("prompt") or []
    answers = [row[c] for c in ("completion", "chosen", "rejected") if row.get(c)] or [[]]
    if isinstance(prompt, str):
        return max(len(tokenizer(prompt + str(answer))["input_ids"]) for answer in answers)
    return max(
        len(tokenizer.apply_chat_template(list(prompt) + list(answer), tokenize=True)["input_ids"])
        for answer in answers
    )


def longest_row(dataset, tokenizer) -> int:
    """Tokens of the data's longest row (of the first LENGTH_SAMPLE rows)."""
    rows = dataset.select(range(min(len(dataset), LENGTH_SAMPLE)))
    return max((_row_tokens(row, tokenizer) for row in rows), default=0)


def fitted_max_length(longest: int, configured: int, model_limit: int | None) -> int:
    """The length a run trains at: the configured one, raised (in steps of 64 tokens, within the
    model's context) so that no row of `longest` tokens is cut short."""
    fitted = max(configured, -(-longest // LENGTH_STEP) * LENGTH_STEP)
    return min(fitted, model_limit) if model_limit else fitted


# Share of a model's parameters a LoRA adapter trains, coarsely (rank 16 on every linear layer of
# SmolLM2-135M trains about 3.6%).
LORA_TRAINABLE_SHARE = 0.04


def fitted_micro_batch(spec: TrainingSpec, model, tokens: int, cuda: bool, bf16: bool):
    """Rows per pass and passes per step that fit this process's memory, and why (rows of
    `tokens` tokens; the spec's memory_bytes, else what the device has free now)."""
    config = model.config.get_text_config()
    params = float(sum(parameter.numel() for parameter in model.parameters()))
    trainable = params if spec.adapter == "full" else params * LORA_TRAINABLE_SHARE
    value_bytes = 2 if bf16 else 4
    row = row_activation_bytes(tokens, config.num_hidden_layers, config.hidden_size, value_bytes)
    if spec.method in PREFERENCE_METHODS:
        row *= 2  # a pair: its chosen and its rejected answer both go through the model
    free = spec.memory_bytes or free_bytes_per_process(spec.num_processes)
    on_gpu_later = cuda and not next(model.parameters()).is_cuda
    if spec.memory_bytes is not None or on_gpu_later:
        # A stated budget holds the weights too, and a GPU the Trainer has not moved them to
        # yet has not lost them (in RAM they are already loaded).
        free -= params * value_bytes
    return micro_batch(spec.batch_size, free, trainable * STATE_BYTES_PER_TRAINABLE, row)
