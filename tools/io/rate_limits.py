"""Per-service pacing shared by every client in a process: rate limiters and hosts marked down."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    """Thread-safe minimum interval between calls; each caller reserves the next free slot."""

    def __init__(
        self,
        min_interval_s: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.min_interval_s = max(0.0, min_interval_s)
        self._clock = clock
        self._sleep = sleep
        self._next = float("-inf")
        self._lock = threading.Lock()

    def wait(self) -> float:
        """Block until this caller's slot; return the seconds waited."""
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self.min_interval_s
        # Sleeping outside the lock lets other threads reserve later slots meanwhile.
        delay = start - now
        if delay > 0:
            self._sleep(delay)
        return delay


_STATE_LOCK = threading.Lock()


# Limiters are per service and process-wide: arXiv's 3 s rule holds across all our clients.
_LIMITERS: dict[str, RateLimiter] = {}


# Base URLs found unreachable, so later calls in the run fail fast instead of retrying again.
_DOWN: dict[str, tuple[float, str]] = {}


def limiter_for(service: str, min_interval_s: float) -> RateLimiter:
    """The process-wide limiter of a service, set to the given interval."""
    with _STATE_LOCK:
        limiter = _LIMITERS.setdefault(service, RateLimiter(min_interval_s))
        limiter.min_interval_s = max(0.0, min_interval_s)
        return limiter


def reset_service_state() -> None:
    """Forget rate-limit slots and hosts marked unreachable (tests, or after reconnecting)."""
    with _STATE_LOCK:
        _LIMITERS.clear()
        _DOWN.clear()


def mark_down(base_url: str, for_s: float, reason: str) -> None:
    """Remember that a base URL failed, so calls in the next `for_s` seconds fail fast."""
    with _STATE_LOCK:
        _DOWN[base_url] = (time.monotonic() + for_s, reason)


def down_reason(base_url: str) -> str | None:
    """Why a base URL is still marked unreachable, or None when it may be tried."""
    with _STATE_LOCK:
        until, reason = _DOWN.get(base_url, (0.0, ""))
    return reason if time.monotonic() < until else None
