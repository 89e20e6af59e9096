"""vLLM for generation-heavy work on a GPU: many completions of one checkpoint in one engine.

Used only where the `vllm` package is installed and a CUDA device is visible; never imported
otherwise. An engine takes tens of seconds to start (weights, CUDA graphs, KV-cache
allocation), so it pays only for large jobs: below VLLM_MIN_COMPLETIONS the batched
transformers loop in `generation.complete` is faster end to end.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from postlab.tools.training.devices import visible_gpus

# Completions (prompts × samples) from which a vLLM engine's start-up is worth paying.
VLLM_MIN_COMPLETIONS = 512
# Share of the GPU's memory the engine may take for weights and KV cache: the rest stays free
# for whatever else the lab holds on that device.
VLLM_GPU_MEMORY_SHARE = 0.5


def vllm_available() -> bool:
    """Whether vLLM can run here: the package is installed and a CUDA device is visible."""
    return importlib.util.find_spec("vllm") is not None and visible_gpus() > 0


def use_vllm(completions: int) -> bool:
    """Whether a job of this many completions goes to vLLM."""
    return completions >= VLLM_MIN_COMPLETIONS and vllm_available()


def complete_with_vllm(
    model_path: str | Path,
    prompts: list[str],
    max_new_tokens: int,
    samples: int = 1,
    temperature: float | None = None,
    seed: int = 0,
) -> list[list[str]]:
    """`samples` completions per chat prompt with vLLM (greedy when temperature is None), in
    prompt order, through the checkpoint's own chat template."""
    from vllm import LLM, SamplingParams

    engine = LLM(
        model=str(model_path),
        dtype="auto",
        seed=seed,
        gpu_memory_utilization=VLLM_GPU_MEMORY_SHARE,
    )
    params = SamplingParams(
        n=samples,
        temperature=0.0 if temperature is None else temperature,
        top_p=1.0,
        max_tokens=max_new_tokens,
        seed=seed,
    )
    conversations = [[{"role": "user", "content": prompt}] for prompt in prompts]
    try:
        outputs = engine.chat(conversations, params, use_tqdm=False)
        return [[choice.text for choice in output.outputs] for output in outputs]
    finally:
        # The engine holds half the GPU: give it back before training or the next engine.
        del engine
        _release_gpu_memory()


def _release_gpu_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
