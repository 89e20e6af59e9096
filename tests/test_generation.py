"""Batched generation: a prompt prefix shared by a job is computed once and changes nothing."""

import pytest

from postlab.tools.evaluation import generation
from postlab.tools.evaluation.generation import complete, load_for_generation
from postlab.tools.models.prefix_cache import shared_prefix_length

# Prompts whose own tokens differ in number, so batches pad between prefix and prompt.
PROMPTS = [
    "What is 3 + 4?",
    "What is 123 + 4567? Reply with the number only.",
    "Sort 5, 1, 3.",
    "What is 19 + 1?",
    "Name a colour.",
]


def test_the_shared_prefix_leaves_every_prompt_a_token_of_its_own():
    assert shared_prefix_length([[1, 2, 3, 4], [1, 2, 5], [1, 2, 3]]) == 2
    assert shared_prefix_length([[7, 8, 9], [7, 8, 9]]) == 2
    assert shared_prefix_length([[1, 2], [3, 4]]) == 0
    assert shared_prefix_length([[5]]) == 0


@pytest.fixture(scope="module")
def loaded(tiny_model):
    """A tiny random Llama whose large weights make every prompt's answer its own (the shared
    tiny model answers everything with newlines, which would hide a wrong position or mask)."""
    from support.tiny_model import tiny_llama

    _, tokenizer = load_for_generation(tiny_model)
    return tiny_llama(tokenizer, initializer_range=0.5).eval(), tokenizer


def test_a_shared_prefix_gives_the_answers_of_whole_prompts(loaded, monkeypatch):
    model, tokenizer = loaded
    computed = []
    real_cache = generation._prefix_cache

    def spy(model, prefix):
        computed.append(len(prefix))
        return real_cache(model, prefix)

    monkeypatch.setattr(generation, "_prefix_cache", spy)
    shared = complete(model, tokenizer, PROMPTS, 12, batch_size=2)
    # The chat template's system prompt and user header: one computation for three batches.
    assert len(computed) == 1 and computed[0] >= generation.MIN_SHARED_PREFIX

    # The reference: each whole prompt alone, no cache handed in and no padding.
    monkeypatch.setattr(generation, "MIN_SHARED_PREFIX", 10_000)
    whole = complete(model, tokenizer, PROMPTS, 12, batch_size=1)
    assert len(computed) == 1
    assert shared == whole
    assert len({texts[0] for texts in shared}) == len(PROMPTS)
    assert all(len(texts) == 1 for texts in shared)


def test_samples_come_back_per_prompt_in_prompt_order(loaded):
    model, tokenizer = loaded
    sampled = complete(model, tokenizer, PROMPTS, 6, samples=3, temperature=1.0, batch_size=6)
    again = complete(model, tokenizer, PROMPTS, 6, samples=3, temperature=1.0, batch_size=6)
    assert [len(texts) for texts in sampled] == [3] * len(PROMPTS)
    assert sampled == again  # the seed fixes the draws
    greedy = complete(model, tokenizer, PROMPTS[::-1], 6)
    assert greedy[::-1] == complete(model, tokenizer, PROMPTS, 6)
    assert complete(model, tokenizer, [], 6) == []
