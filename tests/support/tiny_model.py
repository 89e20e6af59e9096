"""A tiny random Llama with the base model's tokenizer, for fast training and generation tests."""

from __future__ import annotations

from pathlib import Path

from postlab.tools.models.resolution import DEFAULT_MODEL, resolve_model


def tiny_llama(tokenizer, seed: int = 0, initializer_range: float = 0.02):
    """A tiny randomly initialised Llama for the tokenizer's vocabulary, in memory.

    At the default initialisation it answers every prompt alike; a large `initializer_range`
    (0.5) makes each prompt's answer its own.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        initializer_range=initializer_range,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
    )
    return LlamaForCausalLM(config)


def make_tiny_model(
    out_dir: Path, tokenizer_source: str | Path | None = None, seed: int = 0
) -> Path:
    """Write a tiny randomly initialised Llama with the base model's tokenizer (for tests)."""
    from transformers import AutoTokenizer

    source = tokenizer_source or resolve_model(DEFAULT_MODEL).path
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = tiny_llama(tokenizer, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir
