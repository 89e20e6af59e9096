"""A tiny random Llama with the base model's tokenizer, for fast training and generation tests."""

from __future__ import annotations

from pathlib import Path

from postlab.tools.models.resolution import DEFAULT_MODEL, resolve_model


def make_tiny_model(
    out_dir: Path, tokenizer_source: str | Path | None = None, seed: int = 0
) -> Path:
    """Write a tiny randomly initialised Llama with the base model's tokenizer (for tests)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    source = tokenizer_source or resolve_model(DEFAULT_MODEL).path
    tokenizer = AutoTokenizer.from_pretrained(source)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
    )
    model = LlamaForCausalLM(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir
