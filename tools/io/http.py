"""One HTTP client for every online service: disk cache, rate limit, retries, offline signal.

Each service (arXiv, HF, Semantic Scholar, datasets-server) builds an :class:`HttpClient` from its
base-URL environment variable, so a mirror or a local test server can stand in for the real host.
When a host cannot be reached after the retries, :class:`ServiceUnavailable` is raised: callers
catch it and fall back to the bundled corpus or task catalog, with a visible note.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import json
import os
import random
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from postlab.records.home import postlab_home
from postlab.tools.io.atomic import write_json_atomic
from postlab.tools.io.offline import OFFLINE_ENV
from postlab.tools.io.rate_limits import (
    RateLimiter,
    down_reason,
    limiter_for,
    mark_down,
)

USER_AGENT = "postlab/0.1 (autonomous post-training lab; https://pypi.org/project/postlab)"
# Statuses worth storing: a 404 is as definitive as a 200 (no HTML version, unknown paper).
_CACHEABLE = (200, 404)
# A Retry-After longer than this is treated as "unavailable now" rather than slept through.
_MAX_RETRY_AFTER_S = 120.0
_MAX_REDIRECTS = 5
# Connecting fails fast when there is no network; reading a slow answer may take longer.
CONNECT_TIMEOUT_S = 3.0

Params = Mapping[str, Any] | list[tuple[str, Any]] | None


class ServiceUnavailable(RuntimeError):
    """A service could not be reached after retries: the signal to fall back to offline data."""

    def __init__(self, service: str, reason: str) -> None:
        super().__init__(f"{service} unreachable ({reason})")
        self.service = service
        self.reason = reason


class HttpStatusError(RuntimeError):
    """A definitive error answer (4xx other than 429) that retrying cannot fix."""

    def __init__(self, service: str, status: int, url: str, body: str = "") -> None:
        super().__init__(f"{service}: HTTP {status} for {url}: {body[:200]}")
        self.service = service
        self.status = status
        self.url = url


@dataclass(frozen=True)
class HttpResponse:
    """A finished response: status, decoded body and whether it came from the disk cache."""

    status: int
    text: str
    url: str
    content_type: str = ""
    from_cache: bool = False
    stale: bool = False

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.text)


def env_float(name: str, default: float) -> float:
    """A float from the environment, the default when unset or blank."""
    value = os.environ.get(name, "").strip()
    return float(value) if value else default


@contextmanager
def using(client: HttpClient | None, factory: Callable[[], HttpClient]) -> Iterator[HttpClient]:
    """The given client as is, or a fresh one from ``factory`` closed on exit."""
    if client is not None:
        yield client
        return
    owned = factory()
    try:
        yield owned
    finally:
        owned.close()


def cache_key(method: str, url: str, params: Params, scope: str = "anonymous") -> str:
    """Stable hash of method, URL, (sorted) query parameters and the auth scope.

    The scope keeps an answer fetched with a key from being served to a call without one.
    """
    items = list(params.items()) if isinstance(params, Mapping) else list(params or [])
    flat = sorted((str(k), json.dumps(v, sort_keys=True, default=str)) for k, v in items)
    raw = json.dumps([method.upper(), url, flat, scope])
    return hashlib.sha256(raw.encode()).hexdigest()


def _origin(url: str | httpx.URL) -> tuple[str, str, int | None]:
    parsed = httpx.URL(str(url))
    return parsed.scheme, parsed.host, parsed.port


def _auth_scope(secrets: Mapping[str, str]) -> str:
    if not secrets:
        return "anonymous"
    material = json.dumps(sorted(secrets.items()))
    # A hash of the credentials, never the credentials: cache files must not hold them.
    return "auth-" + hashlib.sha256(material.encode()).hexdigest()[:16]


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


# A request's timeout, retries after a failure, how long a cached answer stays fresh, and the
# first backoff between retries (each overridable per client, and by POSTLAB_HTTP_* variables).
TIMEOUT_S = 20.0
RETRIES = 3
CACHE_TTL_S = 86400.0
BACKOFF_S = 1.0


class HttpClient:
    """GET with on-disk cache, per-service rate limit, retries with backoff and timeouts."""

    def __init__(
        self,
        service: str,
        base_url: str,
        min_interval_s: float = 0.0,
        timeout_s: float = TIMEOUT_S,
        max_retries: int = RETRIES,
        cache_dir: Path | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        secret_headers: Mapping[str, str] | None = None,
        cache_ttl_s: float = CACHE_TTL_S,
        use_cache: bool = True,
        backoff_s: float = BACKOFF_S,
        max_backoff_s: float = 30.0,
        down_for_s: float = 300.0,
        transport: httpx.BaseTransport | None = None,
        limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.service = service
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.max_retries = max(0, max_retries)
        self.cache_dir = Path(cache_dir) if cache_dir else postlab_home() / "http-cache"
        self.cache_ttl_s = cache_ttl_s
        self.use_cache = use_cache
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.down_for_s = down_for_s
        self.limiter = limiter or limiter_for(service, min_interval_s)
        self._sleep = sleep
        self._rng = rng or random.Random()
        # Keys go only to the base URL's origin: redirects are followed here, hop by hop, so a
        # redirect to another host never carries them (httpx strips only Authorization).
        self._secrets = {k: v for k, v in (secret_headers or {}).items() if v}
        self._origin = _origin(self.base_url)
        self._scope = _auth_scope(self._secrets)
        self._client = httpx.Client(
            transport=transport,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, CONNECT_TIMEOUT_S)),
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT, **dict(headers or {})},
        )

    @classmethod
    def from_env(
        cls,
        service: str,
        default_base_url: str,
        url_env: str,
        min_interval_s: float,
        headers: Mapping[str, str] | None = None,
        secret_headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> HttpClient:
        """A client configured from the environment (base URL, interval, timeouts, cache)."""
        key = service.upper().replace("-", "_")
        settings: dict[str, Any] = {
            "min_interval_s": env_float(f"POSTLAB_{key}_MIN_INTERVAL_S", min_interval_s),
            "timeout_s": env_float("POSTLAB_HTTP_TIMEOUT_S", TIMEOUT_S),
            "max_retries": int(env_float("POSTLAB_HTTP_RETRIES", RETRIES)),
            "cache_ttl_s": env_float("POSTLAB_HTTP_CACHE_TTL_S", CACHE_TTL_S),
            "backoff_s": env_float("POSTLAB_HTTP_BACKOFF_S", BACKOFF_S),
            "use_cache": os.environ.get("POSTLAB_HTTP_CACHE", "1") != "0",
        }
        settings.update(kwargs)
        base = os.environ.get(url_env, "").strip() or default_base_url
        return cls(service, base, headers=headers, secret_headers=secret_headers, **settings)

    def close(self) -> None:
        """Close the underlying connection pool."""
        self._client.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def url(self, path: str) -> str:
        """Absolute URL of a path under the base URL (absolute URLs pass through)."""
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def get_json(self, path: str, params: Params = None) -> Any:
        """GET and parse JSON; HttpStatusError on a non-2xx answer."""
        return self._ok(self.get(path, params)).json()

    def get_text(self, path: str, params: Params = None) -> str:
        """GET and return the body; HttpStatusError on a non-2xx answer."""
        return self._ok(self.get(path, params)).text

    def _ok(self, response: HttpResponse) -> HttpResponse:
        if not 200 <= response.status < 300:
            raise HttpStatusError(self.service, response.status, response.url, response.text)
        return response

    def get(self, path: str, params: Params = None) -> HttpResponse:
        """GET through cache, rate limiter and retries; ServiceUnavailable when unreachable."""
        url = self.url(path)
        key = cache_key("GET", url, params, self._scope)
        cached = self._cache_read(key)
        if cached is not None and not cached.stale:
            return cached
        reason = self._blocked_reason()
        if reason is None:
            response, reason = self._fetch(url, params)
            if response is not None:
                if response.status in _CACHEABLE:
                    self._cache_write(key, response)
                return response
            mark_down(self.base_url, self.down_for_s, reason)
        if cached is not None:
            # Stale data beats none when the service is down: papers don't change much.
            return cached
        raise ServiceUnavailable(self.service, reason)

    def _blocked_reason(self) -> str | None:
        if os.environ.get(OFFLINE_ENV, "") not in ("", "0"):
            return f"{OFFLINE_ENV} is set (--offline)"
        reason = down_reason(self.base_url)
        return f"{reason}; marked unreachable, not retried yet" if reason else None

    def _delay(self, attempt: int) -> float:
        base = min(self.max_backoff_s, self.backoff_s * 2**attempt)
        return base * (0.75 + 0.5 * self._rng.random())

    def _fetch(self, url: str, params: Params) -> tuple[HttpResponse | None, str]:
        reason = "no attempt made"
        # A refused connection or DNS failure usually means offline: one retry, not the full
        # ladder, so a run without network falls back in seconds.
        transport_tries = min(self.max_retries, 1)
        attempt = transport_failures = 0
        while True:
            self.limiter.wait()
            delay: float | None = None
            try:
                raw = self._get_following_redirects(url, params)
            except httpx.TimeoutException:
                reason = f"timed out after {self.timeout_s:g}s"
                transport_failures += 1
                retryable = transport_failures <= transport_tries
            except httpx.TransportError as error:
                reason = f"{type(error).__name__}: {error}".rstrip(": ")
                transport_failures += 1
                retryable = transport_failures <= transport_tries
            else:
                if raw.status_code != 429 and raw.status_code < 500:
                    kind = raw.headers.get("content-type", "")
                    return HttpResponse(raw.status_code, raw.text, str(raw.url), kind), ""
                reason = f"HTTP {raw.status_code}"
                delay = _retry_after(raw.headers.get("retry-after"))
                if delay is not None and delay > _MAX_RETRY_AFTER_S:
                    return None, f"{reason}, Retry-After {delay:.0f}s"
                retryable = True
            if not retryable or attempt >= self.max_retries:
                return None, reason
            self._sleep(self._delay(attempt) if delay is None else delay)
            attempt += 1

    def _get_following_redirects(self, url: str, params: Params) -> httpx.Response:
        """GET, following redirects; keys are sent only to the base URL's origin."""
        request_params = params
        for _ in range(_MAX_REDIRECTS + 1):
            secrets = self._secrets if _origin(url) == self._origin else {}
            raw = self._client.get(url, params=request_params, headers=secrets)
            if not raw.is_redirect or raw.next_request is None:
                return raw
            url, request_params = str(raw.next_request.url), None
        raise httpx.TooManyRedirects(f"more than {_MAX_REDIRECTS} redirects", request=raw.request)

    def _cache_path(self, key: str) -> Path:
        return self.cache_dir / self.service / key[:2] / f"{key}.json"

    def _cache_read(self, key: str) -> HttpResponse | None:
        if not self.use_cache:
            return None
        try:
            entry = json.loads(self._cache_path(key).read_text(encoding="utf-8"))
            stale = time.time() - float(entry["stored_at"]) > self.cache_ttl_s
            return HttpResponse(
                int(entry["status"]),
                entry["text"],
                entry["url"],
                entry.get("content_type", ""),
                from_cache=True,
                stale=stale,
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _cache_write(self, key: str, response: HttpResponse) -> None:
        if not self.use_cache:
            return
        path = self._cache_path(key)
        entry = {
            "url": response.url,
            "status": response.status,
            "content_type": response.content_type,
            "stored_at": time.time(),
            "text": response.text,
        }
        # A read-only or full disk must not break the lookup that just succeeded.
        with contextlib.suppress(OSError):
            write_json_atomic(path, entry)
