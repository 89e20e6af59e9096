"""How a step's rows are split into passes that fit a process's memory; which GPUs it sees."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.fresh_python import run_python

from postlab.tools.training import devices
from postlab.tools.training.devices import micro_batch, row_activation_bytes


def test_rows_fit_beside_the_training_state_or_go_in_passes():
    row = row_activation_bytes(64, 30, 576, 4)
    # SmolLM2-135M's 30 layers, a 64-token chat row in fp32: about 75 MB of activations.
    assert 70e6 < row < 80e6
    assert micro_batch(8, 100 * row + 1e9, 1e9, row)[:2] == (8, 1)
    assert micro_batch(8, 3 * row + 1e9, 1e9, row)[:2] == (2, 4)
    # Rows divide the step evenly: 5 fit, so 4 (and 2 passes), never 5 + 3.
    size, passes, why = micro_batch(8, 5 * row + 1e9, 1e9, row)
    assert (size, passes) == (4, 2) and "4 rows at a time, 2 passes a step" in why
    # Nothing fits: one row at a time, and the reason shows why memory is short.
    size, passes, why = micro_batch(8, 0.5e9, 1e9, row)
    assert (size, passes) == (1, 8) and "0.00 GB free" in why


@given(
    batch=st.integers(1, 64),
    rows_free=st.integers(0, 100),
)
def test_a_split_keeps_the_steps_rows_and_fits_when_anything_does(batch, rows_free):
    row = 1e6
    size, passes, _ = micro_batch(batch, rows_free * row + 5e8, 5e8, row)
    assert size * passes == batch
    assert size * row <= rows_free * row or size == 1


GPU_PROBE = """
import sys
from postlab.tools.training import devices
{patch}
print(devices.visible_gpus(), "torch" in sys.modules)
"""


def _probe(patch: str) -> list[str]:
    return run_python(GPU_PROBE.format(patch=patch))


def test_a_machine_without_gpu_device_nodes_is_answered_without_importing_torch():
    if devices.gpu_device_nodes():
        pytest.skip("needs a machine without GPUs")
    assert _probe("") == ["0", "False"]
    # Where a device node exists, torch is asked (and on this machine finds no CUDA device).
    assert _probe("devices.gpu_device_nodes = lambda: ['/dev/nvidia0']") == ["0", "True"]
