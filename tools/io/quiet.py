"""Progress bars off while the lab works inside a host process, unless the user asks for them."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

import datasets
import huggingface_hub.utils as hub_utils

# Set to 1 to let datasets, transformers and huggingface_hub draw their progress bars.
SHOW_BARS_ENV = "POSTLAB_PROGRESS_BARS"
# transformers takes its bars' setting from huggingface_hub's when it is first imported, so a
# block that has not needed it yet need not pay its import (a second) to silence it.
_TRANSFORMERS_LOGGING = "transformers.utils.logging"


@contextlib.contextmanager
def quiet_progress() -> Iterator[None]:
    """Silence the Hugging Face libraries' progress bars for the block, then restore them."""
    if os.environ.get(SHOW_BARS_ENV) == "1":
        yield
        return
    # (is enabled, disable, enable) for each library, so the host's own setting comes back.
    switches = [
        (
            not datasets.are_progress_bars_disabled(),
            datasets.disable_progress_bars,
            datasets.enable_progress_bars,
        ),
        (
            not hub_utils.are_progress_bars_disabled(),
            hub_utils.disable_progress_bars,
            hub_utils.enable_progress_bars,
        ),
    ]
    transformers_logging = sys.modules.get(_TRANSFORMERS_LOGGING)
    if transformers_logging is not None:
        switches.append(
            (
                transformers_logging.is_progress_bar_enabled(),
                transformers_logging.disable_progress_bar,
                transformers_logging.enable_progress_bar,
            )
        )
    hub_was_enabled = switches[1][0]
    for _, disable, _ in switches:
        disable()
    try:
        yield
    finally:
        for was_enabled, _, enable in switches:
            if was_enabled:
                enable()
        imported_inside = transformers_logging is None and _TRANSFORMERS_LOGGING in sys.modules
        if imported_inside and hub_was_enabled:
            # Imported while the hub's bars were off, it took that as its own setting.
            sys.modules[_TRANSFORMERS_LOGGING].enable_progress_bar()
