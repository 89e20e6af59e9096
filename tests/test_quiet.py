"""Inside a host process the lab silences progress bars only while it works, then restores them."""

import os
import sys

import datasets
import huggingface_hub.utils as hub_utils
import pytest
from support.fresh_python import run_python
from transformers.utils import logging as transformers_logging

from postlab.tools.io.quiet import SHOW_BARS_ENV, quiet_progress

HUB_BARS_ENV = "HF_HUB_DISABLE_PROGRESS_BARS"


def _enabled() -> tuple[bool, bool, bool]:
    return (
        not datasets.are_progress_bars_disabled(),
        not hub_utils.are_progress_bars_disabled(),
        transformers_logging.is_progress_bar_enabled(),
    )


@pytest.fixture(autouse=True)
def _session_bars_come_back():
    # Bars these tests turn on would stay on for later tests in this process: quiet_progress
    # would then restore them there, and huggingface_hub warns under the session's environment.
    before = _enabled()
    yield
    switches = (
        (datasets.enable_progress_bars, datasets.disable_progress_bars),
        (hub_utils.enable_progress_bars, hub_utils.disable_progress_bars),
        (transformers_logging.enable_progress_bar, transformers_logging.disable_progress_bar),
    )
    for was_on, (enable, disable) in zip(before, switches, strict=True):
        (enable if was_on else disable)()


def test_bars_are_off_inside_and_the_hosts_setting_returns(monkeypatch):
    monkeypatch.delenv(SHOW_BARS_ENV, raising=False)
    # The test session turns hub bars off through the environment; act as a host that did not.
    hub_tqdm = sys.modules["huggingface_hub.utils.tqdm"]
    monkeypatch.setattr(hub_tqdm, "HF_HUB_DISABLE_PROGRESS_BARS", None)
    datasets.enable_progress_bars()
    hub_utils.enable_progress_bars()
    transformers_logging.enable_progress_bar()
    with quiet_progress():
        assert _enabled() == (False, False, False)
    assert _enabled() == (True, True, True)
    # A host that had them off keeps them off.
    datasets.disable_progress_bars()
    with quiet_progress():
        pass
    assert _enabled() == (False, True, True)


def test_asking_for_bars_leaves_them_on(monkeypatch):
    monkeypatch.setenv(SHOW_BARS_ENV, "1")
    datasets.enable_progress_bars()
    with quiet_progress():
        assert not datasets.are_progress_bars_disabled()


FIRST_IMPORT_INSIDE = """
import sys
import huggingface_hub.utils as hub_utils
from postlab.tools.io.quiet import quiet_progress

hub_utils.enable_progress_bars()
with quiet_progress():
    before = "transformers.utils.logging" in sys.modules
    from transformers.utils import logging
    inside = logging.is_progress_bar_enabled()
print(before, inside, logging.is_progress_bar_enabled())
"""


def test_transformers_first_imported_inside_is_quiet_there_and_the_hosts_after():
    env = {k: v for k, v in os.environ.items() if k not in (SHOW_BARS_ENV, HUB_BARS_ENV)}
    # The block does not import transformers to silence it; its bars follow the hub's.
    assert run_python(FIRST_IMPORT_INSIDE, env) == ["False", "False", "True"]
