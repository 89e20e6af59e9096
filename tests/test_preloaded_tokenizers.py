"""Tokenizers loaded in the warm launcher reach the workers it forks, matched by their files."""

from __future__ import annotations

import json
import shutil

from postlab.tools.training.preloaded import (
    TOKENIZER_FILES,
    load_tokenizer,
    preload_tokenizer,
    tokenizer_key,
)
from postlab.tools.training.warm_start import prewarm, start_warm
from postlab.tools.training.worker_start import base_env


def _tokenizer_copy(tiny_model, folder):
    folder.mkdir()
    for name in TOKENIZER_FILES:
        if (tiny_model / name).is_file():
            shutil.copy(tiny_model / name, folder / name)
    return folder


def test_a_tokenizer_is_known_by_its_files_alone(tiny_model, tmp_path):
    copy = _tokenizer_copy(tiny_model, tmp_path / "copy")
    assert tokenizer_key(copy) == tokenizer_key(tiny_model) is not None
    # Another chat template is another tokenizer.
    template = copy / "chat_template.jinja"
    template.write_text(template.read_text() + " ")
    assert tokenizer_key(copy) != tokenizer_key(tiny_model)
    # Without a class named, transformers would ask the model's config: no key.
    config = json.loads((copy / "tokenizer_config.json").read_text())
    config.pop("tokenizer_class")
    (copy / "tokenizer_config.json").write_text(json.dumps(config))
    assert tokenizer_key(copy) is None
    assert tokenizer_key(tmp_path / "missing") is None


def test_a_preloaded_tokenizer_is_handed_out_once(tiny_model, tmp_path):
    copy = _tokenizer_copy(tiny_model, tmp_path / "copy")
    assert preload_tokenizer(tiny_model)
    first = load_tokenizer(copy)
    # A worker may change its tokenizer: the next load gets its own.
    first.pad_token = first.eos_token
    second = load_tokenizer(copy)
    assert second is not first
    assert second("12 + 30")["input_ids"] == first("12 + 30")["input_ids"]


def test_a_worker_forked_warm_takes_the_tokenizer_its_launcher_loaded(tiny_model, tmp_path):
    env = {**base_env(), "HF_POSTLAB_TEST": "tokenizer"}
    probe = (
        "from postlab.tools.training.preloaded import _tokenizers, tokenizer_key, load_tokenizer; "
        f"key = tokenizer_key({str(tiny_model)!r}); held = _tokenizers.get(key); "
        f"print('preloaded', held is not None and load_tokenizer({str(tiny_model)!r}) is held)"
    )

    prewarm(env, (str(tiny_model),))
    worker = start_warm("timeit", ["-n", "1", "-r", "1", probe], env, str(tmp_path))
    assert "preloaded True" in worker.stdout.read() and worker.wait(timeout=60) == 0
