"""Completion-only SFT loss that sends only the scored positions through the LM head.

TRL's fused head scores just the completion tokens on Triton devices; elsewhere it projects every
position (prompt and padding included) through the vocabulary-sized head and masks the result
afterwards. With chat prompts of ~50 tokens and answers of a few, that head is a fifth of a CPU
step's time (benchmarks/throughput.py). The loss is the same sum over the same tokens.

The leading tokens every row of a batch shares (the chat template's system prompt) run through
the decoder once, and the rows run on top of their attention cache: their hidden states and
keys are the same in every row, so the loss and its gradients are too, for about half the
tokens of a demo batch (a fifth less time a step).
"""

from __future__ import annotations

from typing import Any

from postlab.tools.models.prefix_cache import decoder_states

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
