"""A prompt prefix shared by every row of a batch or a job, run through the model once.

Chat templates put the same system prompt and turn header before every prompt (SmolLM2's is 27
of a demo row's 52 tokens). Generation and training both run that prefix once, keep its
attention cache, and run each row's own tokens on top of it: the same attention over the same
keys, with a fraction of the work.
"""

from __future__ import annotations

from typing import Any

# Below this many shared tokens the saving is smaller than handling the cache.
MIN_SHARED_PREFIX = 8


def shared_prefix_length(token_lists: list[list[int]]) -> int:
    """How many leading tokens all the lists share, leaving each at least one of its own."""
    shortest = min(len(tokens) for tokens in token_lists)
    first = token_lists[0]
    length = 0
    while length < shortest - 1 and all(t[length] == first[length] for t in token_lists):
        length += 1
    return length


def reusable_cache(output: Any) -> Any | None:
    """A forward pass's attention cache when rows can be run on top of it, else None.

    Only plain key/value layers qualify: sliding-window, linear-attention and quantised layers
    keep a state that is not simply the prefix's keys and values.
    """
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    cache = getattr(output, "cache", None)
    if not isinstance(cache, DynamicCache):
        return None
    layers = getattr(cache, "layers", None) or []
    return cache if all(type(layer) is DynamicLayer for layer in layers) else None
