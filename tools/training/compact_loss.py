"""Completion-only SFT loss that sends only the scored positions through the LM head.

TRL's fused head scores just the completion tokens on Triton devices; elsewhere it projects every
position (prompt and padding included) through the vocabulary-sized head and masks the result
afterwards. With chat prompts of ~50 tokens and answers of a few, that head is a fifth of a CPU
step's time (benchmarks/throughput.py). The loss is the same sum over the same tokens.

The leading tokens every row of a batch shares (the chat template's system prompt) run through
the decoder once, and the rows run on top of their attention cache: their hidden states and
keys are the same in every row, so the loss and its gradients are too, for about half the
work on a demo batch.
"""

from __future__ import annotations

from typing import Any

from postlab.tools.models.prefix_cache import MIN_SHARED_PREFIX, reusable_cache

# Model inputs the decoder itself takes; the collator's other keys (labels) stay with the loss.
_DECODER_INPUTS = ("input_ids", "attention_mask", "position_ids")
# Config fields by which a model's forward changes the head's logits (Gemma's soft-capping,
# Cohere's logit scale, Granite's and Falcon-H1's multipliers): such models keep TRL's loss.
_LOGIT_TRANSFORMS = (
    "final_logit_softcapping",
    "logit_scale",
    "output_multiplier",
    "lm_head_multiplier",
    "logits_scaling",
)


def plain_head(config: Any) -> bool:
    """Whether a model's logits are its LM head's output as is (no scaling or soft-capping)."""
    return all(getattr(config, name, None) in (None, 1, 1.0) for name in _LOGIT_TRANSFORMS)


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


def compact_completion_loss(trainer_cls: type) -> type:
    """A subclass of TRL's SFT trainer whose loss projects only the completion positions.

    It applies to one process in full precision, where nothing wraps the model's forward (no
    DDP or FSDP wrapper, no autocast) that calling its decoder directly would skip, on models
    whose logits are the head's output as is; anything else takes TRL's own loss.
    """

    class CompactCompletionLoss(trainer_cls):
        def _compact_applies(self, model: Any) -> bool:
            config = getattr(model, "config", None)
            return (
                config is not None
                # A vision-language model's decoder is its language part alone: inputs get lost.
                and config.get_text_config() is config
                # Losses TRL computes otherwise (MoE aux loss, DFT, a custom or smoothed loss).
                and not getattr(self, "aux_loss_enabled", False)
                and getattr(self.args, "loss_type", "nll") == "nll"
                and self.compute_loss_func is None
                and self.label_smoother is None
                and self.accelerator.num_processes == 1
                and self.accelerator.mixed_precision == "no"
                and not getattr(self, "is_fsdp_enabled", False)
                and hasattr(model, "get_decoder")
                and hasattr(model, "get_output_embeddings")
                and plain_head(config)
            )

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if return_outputs or "labels" not in inputs or not self._compact_applies(model):
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            import torch

            mode = "train" if self.model.training else "eval"
            forward = {key: inputs[key] for key in _DECODER_INPUTS if key in inputs}
            hidden, shared = decoder_states(model.get_decoder(), forward)
            self.shared_prefix_passes = getattr(self, "shared_prefix_passes", 0) + shared
            targets = inputs["labels"][:, 1:]
            mask = targets != -100
            logits = model.get_output_embeddings()(hidden[:, :-1][mask]).float()
            log_probs = logits.log_softmax(-1)
            chosen = targets[mask]
            picked = log_probs.gather(-1, chosen.unsqueeze(-1)).squeeze(-1)
            count = mask.sum() if num_items_in_batch is None else num_items_in_batch
            loss = -picked.sum() / torch.as_tensor(count).clamp(min=1)
            with torch.no_grad():
                valid = max(int(mask.sum()), 1)
                entropy = -(log_probs.exp() * log_probs).sum(-1).sum() / valid
                correct = (logits.argmax(-1) == chosen).sum() / valid
            self._metrics[mode]["entropy"].append(float(entropy))
            self._metrics[mode]["mean_token_accuracy"].append(float(correct))
            if mode == "train" and "attention_mask" in inputs:
                self._total_train_tokens += int(inputs["attention_mask"].sum())
            self._metrics[mode]["num_tokens"] = [self._total_train_tokens]
            self.compact_passes = getattr(self, "compact_passes", 0) + 1
            return loss

    CompactCompletionLoss.__name__ = CompactCompletionLoss.__qualname__ = (
        f"Compact{trainer_cls.__name__}"
    )
    return CompactCompletionLoss
