"""The collector around long-lived heaps: imports set aside, the collector's state restored."""

from support.fresh_python import run_python

SCRIPT = """
import gc
from postlab.tools.io.heap import imports_uncollected, settle_heap

gc.unfreeze()
{prelude}
before = gc.get_freeze_count()
with imports_uncollected():
    assert not gc.isenabled()
    kept = [[i] for i in range(5000)]
print(gc.isenabled(), gc.get_freeze_count() - before >= 5000)
gc.unfreeze()
cycle = []
cycle.append(cycle)
settle_heap()
print(gc.get_freeze_count() >= 1, gc.collect() == 0)
"""


def _run(prelude: str) -> list[str]:
    return run_python(SCRIPT.format(prelude=prelude))


def test_imports_are_frozen_and_the_collector_comes_back_on():
    # Frozen: what the block allocated is never walked again; a frozen cycle is not collected.
    assert _run("") == ["True", "True", "True", "True"]


def test_a_collector_the_caller_had_off_stays_off():
    assert _run("gc.disable()") == ["False", "True", "True", "True"]
