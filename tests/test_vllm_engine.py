"""Which engine generates: vLLM for large jobs on a GPU where it is installed, else transformers.

vLLM needs a CUDA device, so here a stand-in module answers in vLLM's documented shapes
(`LLM(...).chat(conversations, SamplingParams) -> [RequestOutput(outputs=[CompletionOutput])]`).
"""

from __future__ import annotations

import importlib.machinery
import sys
import types
from dataclasses import dataclass, field

import pytest

from postlab.tools.evaluation import generation, vllm_engine
from postlab.tools.evaluation.vllm_engine import VLLM_MIN_COMPLETIONS


@dataclass
class _Choice:
    text: str


@dataclass
class _Output:
    outputs: list[_Choice] = field(default_factory=list)


@pytest.fixture
def fake_vllm(monkeypatch):
    """A `vllm` module that records its engine and answers each prompt with its own text."""
    calls: dict = {}
    module = types.ModuleType("vllm")
    module.__spec__ = importlib.machinery.ModuleSpec("vllm", None)

    class SamplingParams:
        def __init__(self, **kwargs):
            calls["params"] = kwargs
            self.n = kwargs["n"]

    class LLM:
        def __init__(self, **kwargs):
            calls["engine"] = kwargs

        def chat(self, conversations, params, use_tqdm=True):
            calls["conversations"] = conversations
            return [
                _Output([_Choice(f"{c[0]['content']}#{i}") for i in range(params.n)])
                for c in conversations
            ]

    module.LLM, module.SamplingParams = LLM, SamplingParams
    monkeypatch.setitem(sys.modules, "vllm", module)
    monkeypatch.setattr(vllm_engine, "visible_gpus", lambda: 1)
    return calls


@pytest.fixture
def transformers_loop(monkeypatch):
    """The batched transformers loop, recording that it ran instead of loading a model."""
    ran: list[int] = []
    monkeypatch.setattr(generation, "load_for_generation", lambda path: ("model", "tokenizer"))

    def complete(model, tokenizer, prompts, max_new_tokens, samples=1, **kwargs):
        ran.append(len(prompts))
        return [[f"hf:{p}"] * samples for p in prompts]

    monkeypatch.setattr(generation, "complete", complete)
    return ran


def test_a_large_job_on_a_gpu_goes_to_vllm_in_prompt_order(fake_vllm, transformers_loop):
    prompts = [f"p{i}" for i in range(VLLM_MIN_COMPLETIONS // 4)]
    out = generation.completions_from("/ckpt", prompts, 12, samples=4, temperature=0.7, seed=3)
    assert out[5] == ["p5#0", "p5#1", "p5#2", "p5#3"] and len(out) == len(prompts)
    assert transformers_loop == []
    assert fake_vllm["engine"]["model"] == "/ckpt" and fake_vllm["engine"]["seed"] == 3
    params = fake_vllm["params"]
    assert (params["n"], params["temperature"], params["max_tokens"]) == (4, 0.7, 12)
    assert fake_vllm["conversations"][0] == [{"role": "user", "content": "p0"}]
    # Greedy scoring asks vLLM for temperature 0.
    generation.completions_from("/ckpt", [f"q{i}" for i in range(VLLM_MIN_COMPLETIONS)], 8)
    assert fake_vllm["params"]["temperature"] == 0.0 and fake_vllm["params"]["n"] == 1


def test_small_jobs_and_machines_without_a_gpu_keep_the_transformers_loop(
    fake_vllm, transformers_loop, monkeypatch
):
    small = [f"p{i}" for i in range(VLLM_MIN_COMPLETIONS - 1)]
    assert generation.completions_from("/ckpt", small, 8)[0] == ["hf:p0"]
    assert "engine" not in fake_vllm
    monkeypatch.setattr(vllm_engine, "visible_gpus", lambda: 0)
    large = [f"p{i}" for i in range(VLLM_MIN_COMPLETIONS)]
    assert generation.completions_from("/ckpt", large, 8)[0] == ["hf:p0"]
    assert "engine" not in fake_vllm and transformers_loop == [len(small), len(large)]


def test_without_the_package_nothing_of_vllm_is_used(transformers_loop, monkeypatch):
    monkeypatch.setattr(vllm_engine, "visible_gpus", lambda: 8)
    monkeypatch.delitem(sys.modules, "vllm", raising=False)
    monkeypatch.setattr(vllm_engine.importlib.util, "find_spec", lambda name: None)
    large = [f"p{i}" for i in range(VLLM_MIN_COMPLETIONS)]
    assert generation.completions_from("/ckpt", large, 8)[0] == ["hf:p0"]
    assert "vllm" not in sys.modules


def test_an_engine_that_cannot_start_falls_back_to_transformers(
    fake_vllm, transformers_loop, capsys
):
    def refuse(**kwargs):
        raise RuntimeError("not enough free GPU memory")

    sys.modules["vllm"].LLM = refuse
    large = [f"p{i}" for i in range(VLLM_MIN_COMPLETIONS)]
    assert generation.completions_from("/ckpt", large, 8)[0] == ["hf:p0"]
    assert "not enough free GPU memory" in capsys.readouterr().err
