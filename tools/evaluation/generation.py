"""Batched generation from a checkpoint: greedy answers for scoring, sampled ones for new data."""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from postlab.tools.evaluation.vllm_engine import complete_with_vllm, use_vllm
from postlab.tools.models.prefix_cache import (
    MIN_SHARED_PREFIX,
    reusable_cache,
    shared_prefix_length,
)
from postlab.tools.models.resolution import load_tokenizer


def load_for_generation(model_path: str | Path) -> tuple[Any, Any]:
    """The checkpoint's model (eval mode) and tokenizer, padded on the left for generation."""
    import torch
    from transformers import AutoModelForCausalLM

    tokenizer = load_tokenizer(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    model.eval()
    return model, tokenizer


# Sequences generated side by side. Past 32 a small model's decoding still gains (an untrained
# model's long answers: 200 items in 27 s at 64 against 35 s at 32 on 2 cores) while its
# prompts' attention caches stay small.
GENERATION_BATCH = 64


def _prefix_cache(model: Any, prefix: list[int]) -> Any | None:
    """The attention cache of `prefix` (batch of one), or None where it cannot be reused."""
    import torch

    with torch.inference_mode():
        output = model(input_ids=torch.tensor([prefix], device=model.device), use_cache=True)
    return reusable_cache(output)


def _batch_inputs(
    token_lists: list[list[int]], prefix: int, pad_id: int, device: Any
) -> dict[str, Any]:
    """Input ids and attention mask for one batch: each prompt's own tokens left-padded to the
    longest, after the shared prefix (padding in the middle is masked; positions skip it)."""
    import torch

    head = token_lists[0][:prefix]
    width = max(len(tokens) - prefix for tokens in token_lists)
    ids, mask = [], []
    for tokens in token_lists:
        own = tokens[prefix:]
        gap = width - len(own)
        ids.append(head + [pad_id] * gap + own)
        mask.append([1] * prefix + [0] * gap + [1] * len(own))
    return {
        "input_ids": torch.tensor(ids, device=device),
        "attention_mask": torch.tensor(mask, device=device),
    }


def complete(
    model: Any,
    tokenizer: Any,
    prompts: list[str],
    max_new_tokens: int,
    *,
    samples: int = 1,
    temperature: float | None = None,
    batch_size: int = GENERATION_BATCH,
    seed: int = 0,
    on_batch: Callable[[int, int], None] | None = None,
) -> list[list[str]]:
    """`samples` completions per chat prompt: greedy when temperature is None, else sampled.

    Prompts are batched by length, so padding stays short, and the tokens all prompts share
    are computed once; answers come back in prompt order.
    """
    import torch

    if not prompts:
        return []
    if temperature is not None:
        torch.manual_seed(seed)
    token_lists = tokenizer.apply_chat_template(
        [[{"role": "user", "content": prompt}] for prompt in prompts],
        add_generation_prompt=True,
        return_dict=False,
    )
    prefix = shared_prefix_length(token_lists)
    cache = _prefix_cache(model, token_lists[0][:prefix]) if prefix >= MIN_SHARED_PREFIX else None
    if cache is None:
        prefix = 0
    order = sorted(range(len(prompts)), key=lambda i: len(token_lists[i]))
    results: list[list[str]] = [[] for _ in prompts]
    per_batch = max(1, batch_size // max(1, samples))
    sampling: dict[str, Any] = {"do_sample": False}
    if temperature is not None:
        sampling = {"do_sample": True, "temperature": temperature, "top_p": 1.0}
    done = 0
    for start in range(0, len(order), per_batch):
        indices = order[start : start + per_batch]
        encoded = _batch_inputs(
            [token_lists[i] for i in indices], prefix, tokenizer.pad_token_id, model.device
        )
        if cache is not None:
            # Generation appends to the cache it is given: each batch gets its own copy,
            # one row per sequence it will generate.
            batch_cache = copy.deepcopy(cache)
            batch_cache.batch_repeat_interleave(len(indices) * samples)
            encoded["cache"] = batch_cache
        with torch.inference_mode():
            output = model.generate(
                **encoded,
                max_new_tokens=max_new_tokens,
                num_return_sequences=samples,
                pad_token_id=tokenizer.pad_token_id,
                **sampling,
            )
        prompt_length = encoded["input_ids"].shape[1]
        texts = [tokenizer.decode(row[prompt_length:], skip_special_tokens=True) for row in output]
        for position, index in enumerate(indices):
            results[index] = texts[position * samples : (position + 1) * samples]
        done += len(indices)
        if on_batch:
            on_batch(done, len(prompts))
    return results


def completions_from(
    model_path: str | Path,
    prompts: list[str],
    max_new_tokens: int,
    *,
    samples: int = 1,
    temperature: float | None = None,
    seed: int = 0,
    batch_size: int = GENERATION_BATCH,
    on_batch: Callable[[int, int], None] | None = None,
) -> list[list[str]]:
    """`samples` completions per chat prompt from a checkpoint, by the engine that suits the
    job: vLLM for large jobs on a GPU where it is installed, else the batched loop above."""
    if use_vllm(len(prompts) * samples):
        try:
            completions = complete_with_vllm(
                model_path, prompts, max_new_tokens, samples, temperature, seed
            )
        except (RuntimeError, ValueError, OSError, ImportError) as error:
            # An engine that cannot start (memory held elsewhere, an architecture it lacks)
            # costs the job its speed, never its answers.
            print(f"vLLM could not generate ({error}); using transformers", file=sys.stderr)
        else:
            if on_batch:
                on_batch(len(prompts), len(prompts))
            return completions
    model, tokenizer = load_for_generation(model_path)
    return complete(
        model,
        tokenizer,
        prompts,
        max_new_tokens,
        samples=samples,
        temperature=temperature,
        batch_size=batch_size,
        seed=seed,
        on_batch=on_batch,
    )
