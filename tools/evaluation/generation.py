"""Batched generation from a checkpoint: greedy answers for scoring, sampled ones for new data."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from postlab.tools.evaluation.vllm_engine import complete_with_vllm, use_vllm
from postlab.tools.models.resolution import load_tokenizer


def load_for_generation(model_path: str | Path) -> tuple[Any, Any]:
    """The checkpoint's model (eval mode) and tokenizer, padded on the left for generation."""
    import torch
    from transformers import AutoModelForCausalLM

    tokenizer = load_tokenizer(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    model.eval()
    return model, tokenizer


def complete(
    model: Any,
    tokenizer: Any,
    prompts: list[str],
    max_new_tokens: int,
    *,
    samples: int = 1,
    temperature: float | None = None,
    batch_size: int = 32,
    seed: int = 0,
    on_batch: Callable[[int, int], None] | None = None,
) -> list[list[str]]:
    """`samples` completions per chat prompt: greedy when temperature is None, else sampled.

    Prompts are batched by length, so padding stays short; answers come back in prompt order.
    """
    import torch

    if temperature is not None:
        torch.manual_seed(seed)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    results: list[list[str]] = [[] for _ in prompts]
    per_batch = max(1, batch_size // max(1, samples))
    done = 0
    for start in range(0, len(order), per_batch):
        indices = order[start : start + per_batch]
        encoded = tokenizer.apply_chat_template(
            [[{"role": "user", "content": prompts[i]}] for i in indices],
            add_generation_prompt=True,
            return_tensors="pt",
            padding=True,
            return_dict=True,
        )
        sampling: dict[str, Any] = {"do_sample": False}
        if temperature is not None:
            sampling = {"do_sample": True, "temperature": temperature, "top_p": 1.0}
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
    batch_size: int = 32,
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
