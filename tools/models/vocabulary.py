"""Whole words a model's tokenizer holds as single tokens (word-start marker, then letters)."""

from __future__ import annotations

from pathlib import Path

from postlab.tools.models.resolution import load_tokenizer

# Markers a token starts a word with: byte-level BPE (GPT-2, SmolLM, Qwen) and SentencePiece.
WORD_START = ("Ġ", "▁")
# Shorter tokens are mostly fragments; longer ones are rare in any task's phrasing.
WORD_LENGTHS = (3, 10)


def word_tokens(checkpoint: str | Path) -> list[str]:
    """The lower-case whole English-alphabet words of a checkpoint's vocabulary, sorted."""
    shortest, longest = WORD_LENGTHS
    words = set()
    for token in load_tokenizer(checkpoint).get_vocab():
        if token[:1] in WORD_START:
            word = token[1:]
            if (
                shortest <= len(word) <= longest
                and word.isascii()
                and word.isalpha()
                and word.islower()
            ):
                words.add(word)
    return sorted(words)
