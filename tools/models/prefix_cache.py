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


def shared_columns(input_ids: Any, attention_mask: Any | None) -> int:
    """Leading columns that are the same token, attended, in every row (at most all but one)."""
    same = (input_ids == input_ids[:1]).all(0)
    if attention_mask is not None:
        same &= attention_mask.bool().all(0)
    same[-1] = False
    return int(same.long().cumprod(0).sum())


def decoder_states(decoder: Any, forward: dict[str, Any]) -> tuple[Any, bool]:
    """The decoder's last hidden states for a padded batch, and whether a shared prefix of the
    rows ran once (right padding and plain positions only; otherwise the whole batch runs)."""
    import torch

    input_ids = forward["input_ids"]
    mask = forward.get("attention_mask")
    rows, width = input_ids.shape
    positions = torch.arange(width, device=input_ids.device).expand(rows, -1)
    plain_positions = "position_ids" not in forward or torch.equal(
        forward["position_ids"], positions
    )
    prefix = shared_columns(input_ids, mask) if rows > 1 and plain_positions else 0
    if prefix >= MIN_SHARED_PREFIX:
        head = decoder(input_ids=input_ids[:1, :prefix], use_cache=True)
        cache = reusable_cache(head)
        if cache is not None:
            cache.batch_repeat_interleave(rows)
            own = decoder(
                input_ids=input_ids[:, prefix:],
                attention_mask=mask,
                position_ids=positions[:, prefix:],
                cache=cache,
                use_cache=True,
            ).last_hidden_state
            shared = head.last_hidden_state.expand(rows, -1, -1)
            return torch.cat([shared, own], dim=1), True
    return decoder(**forward, use_cache=False).last_hidden_state, False
