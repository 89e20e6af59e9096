"""Uniform weight averages of checkpoints fine-tuned from one pre-trained model (a "soup").

Fine-tuned models that share their starting weights tend to sit in one basin of the loss, so
the average of their weights is a model of its own, often better than each (Wortsman et al.,
2022, model soups; Izmailov et al., 2018, averaging along one trajectory). Averaging reads one
tensor at a time from every checkpoint, so memory holds one tensor per checkpoint, not models.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

from postlab.tools.io.atomic import share_files, staging_dir

INDEX_NAME = "model.safetensors.index.json"
SINGLE_NAME = "model.safetensors"


class IncompatibleCheckpoints(ValueError):
    """Checkpoints whose weights cannot be averaged (other tensors, shapes or formats)."""


def weight_files(checkpoint: Path) -> list[str]:
    """The safetensors files holding a checkpoint's weights, by name, in a stable order."""
    index = checkpoint / INDEX_NAME
    if index.is_file():
        return sorted(set(json.loads(index.read_text())["weight_map"].values()))
    if (checkpoint / SINGLE_NAME).is_file():
        return [SINGLE_NAME]
    raise IncompatibleCheckpoints(f"{checkpoint} has no safetensors weights to average")


def _check_layout(checkpoints: Sequence[Path]) -> list[str]:
    files = weight_files(checkpoints[0])
    for other in checkpoints[1:]:
        if weight_files(other) != files:
            raise IncompatibleCheckpoints(
                f"{other} stores its weights in other files than {checkpoints[0]}"
            )
        if (other / "adapter_config.json").exists():
            raise IncompatibleCheckpoints(f"{other} is an adapter, not a merged checkpoint")
    return files


def _average_file(checkpoints: Sequence[Path], name: str, target: Path) -> None:
    from safetensors import safe_open
    from safetensors.torch import save_file

    handles = [safe_open(str(c / name), framework="pt") for c in checkpoints]
    keys = sorted(handles[0].keys())
    for checkpoint, handle in zip(checkpoints[1:], handles[1:], strict=True):
        if sorted(handle.keys()) != keys:
            raise IncompatibleCheckpoints(f"{checkpoint / name} holds other tensors")
    averaged = {}
    for key in keys:
        first = handles[0].get_tensor(key)
        if not first.is_floating_point():
            averaged[key] = first
            continue
        # Summed in float32 whatever the stored precision, then stored as it came.
        total = first.float()
        for checkpoint, handle in zip(checkpoints[1:], handles[1:], strict=True):
            tensor = handle.get_tensor(key)
            if tensor.shape != first.shape:
                raise IncompatibleCheckpoints(
                    f"{key} is {tuple(tensor.shape)} in {checkpoint}, {tuple(first.shape)} "
                    f"in {checkpoints[0]}"
                )
            total += tensor.float()
        averaged[key] = (total / len(checkpoints)).to(first.dtype).contiguous()
    save_file(averaged, str(target / name), metadata=handles[0].metadata() or {"format": "pt"})


def average_checkpoints(checkpoints: Sequence[str | Path], out_dir: str | Path) -> Path:
    """Write the uniform average of full checkpoints' weights to `out_dir`; returns it.

    Config, tokenizer and generation settings come from the first checkpoint. The folder is
    filled beside its final place and renamed into it, so it is whole or absent.
    """
    folders = [Path(c) for c in checkpoints]
    if len(folders) < 2:
        raise IncompatibleCheckpoints("averaging needs at least two checkpoints")
    files = _check_layout(folders)
    target = Path(out_dir)
    staging = staging_dir(target, "average")
    try:
        for item in folders[0].iterdir():
            if item.is_file() and item.name not in files:
                shutil.copy2(item, staging / item.name)
        for name in files:
            _average_file(folders, name, staging)
        share_files(staging)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
