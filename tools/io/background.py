"""Work the caller need not wait for, on threads it can still wait for later."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class BackgroundWork:
    """Threads started for one kind of work and joined on demand. They are not daemons: an
    interpreter that exits first still lets them finish."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._threads: list[threading.Thread] = []

    def start(self, target: Callable[..., Any], *args: Any) -> None:
        """Run `target(*args)` on a new thread."""
        thread = threading.Thread(target=target, args=args, name=self.name)
        self._threads.append(thread)
        thread.start()

    def wait(self) -> None:
        """Wait until every thread started so far has finished."""
        while self._threads:
            self._threads.pop().join()
