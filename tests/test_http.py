"""The shared HTTP client: cache, rate limit, retries with backoff, timeouts, offline signal."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
from support.online_server import closed_port_url, configure_env

from postlab.tools.io.http import HttpClient, HttpStatusError, ServiceUnavailable
from postlab.tools.io.rate_limits import RateLimiter, reset_service_state


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Every base URL points at a closed local port: nothing can leave 127.0.0.1.
    configure_env(monkeypatch, closed_port_url(), tmp_path / "home")
    yield
    reset_service_state()


class Recorder:
    """A MockTransport handler answering from a script of responses, counting requests."""

    def __init__(self, *responses: httpx.Response | Exception) -> None:
        self.script = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        item = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(item, Exception):
            raise item
        return item


def make_client(recorder: Recorder, tmp_path: Path, **kwargs) -> tuple[HttpClient, list[float]]:
    sleeps: list[float] = []
    settings = {"max_retries": 3, "backoff_s": 0.5, "cache_dir": tmp_path / "cache"} | kwargs
    client = HttpClient(
        "test-" + tmp_path.name,
        "http://service.test",
        transport=httpx.MockTransport(recorder),
        sleep=sleeps.append,
        **settings,
    )
    return client, sleeps


def test_cache_hit_avoids_a_second_request(tmp_path):
    recorder = Recorder(httpx.Response(200, json={"answer": 42}))
    client, _ = make_client(recorder, tmp_path)
    first = client.get("/api/thing", {"q": "x", "limit": 2})
    second = client.get("/api/thing", {"limit": 2, "q": "x"})  # same params, other order
    assert first.json() == second.json() == {"answer": 42}
    assert (first.from_cache, second.from_cache) == (False, True)
    assert len(recorder.requests) == 1
    client.get("/api/thing", {"q": "y"})
    assert len(recorder.requests) == 2
    files = list((tmp_path / "cache").rglob("*"))
    assert not [f for f in files if f.name.startswith(".tmp-")]
    entry = json.loads(next(f for f in files if f.suffix == ".json").read_text())
    assert entry["status"] == 200 and "stored_at" in entry


def test_expired_cache_is_refetched_and_served_stale_when_down(tmp_path):
    recorder = Recorder(httpx.Response(200, text="v1"))
    client, _ = make_client(recorder, tmp_path, cache_ttl_s=0.0)
    assert client.get("/x").text == "v1"
    recorder.script = [httpx.Response(200, text="v2")]
    assert client.get("/x").text == "v2"
    recorder.script = [httpx.ConnectError("network is unreachable")]
    stale = client.get("/x")
    assert stale.text == "v2" and stale.stale and stale.from_cache


def test_corrupt_cache_entry_is_ignored(tmp_path):
    recorder = Recorder(httpx.Response(200, text="fresh"))
    client, _ = make_client(recorder, tmp_path)
    client.get("/x")
    for path in (tmp_path / "cache").rglob("*.json"):
        path.write_text("{not json")
    assert client.get("/x").text == "fresh"
    assert len(recorder.requests) == 2


def test_rate_limiter_spaces_calls_with_a_fake_clock():
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(3.0, clock=lambda: now[0], sleep=sleep)
    starts = []
    for _ in range(3):
        limiter.wait()
        starts.append(now[0])
    assert [b - a for a, b in zip(starts, starts[1:], strict=False)] == [3.0, 3.0]
    now[0] += 10  # idle long enough: no wait
    assert limiter.wait() == 0.0


def test_rate_limiter_is_thread_safe_in_real_time():
    limiter = RateLimiter(0.05)
    stamps: list[float] = []
    lock = threading.Lock()

    def call() -> None:
        limiter.wait()
        with lock:
            stamps.append(time.monotonic())

    threads = [threading.Thread(target=call) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stamps.sort()
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    assert min(gaps) >= 0.04 and stamps[-1] - stamps[0] >= 0.19


def test_retry_on_429_honours_retry_after_then_succeeds(tmp_path):
    recorder = Recorder(
        httpx.Response(429, headers={"Retry-After": "2"}),
        httpx.Response(503),
        httpx.Response(200, json={"ok": True}),
    )
    client, sleeps = make_client(recorder, tmp_path)
    assert client.get_json("/x") == {"ok": True}
    assert len(recorder.requests) == 3
    assert sleeps[0] == 2.0  # Retry-After wins over the backoff
    assert 0.5 * 2 * 0.75 <= sleeps[1] <= 0.5 * 2 * 1.25  # second attempt: doubled, jittered


def test_5xx_exhausted_raises_service_unavailable_with_growing_backoff(tmp_path):
    recorder = Recorder(httpx.Response(500))
    client, sleeps = make_client(recorder, tmp_path, max_retries=3)
    with pytest.raises(ServiceUnavailable) as caught:
        client.get("/x")
    assert caught.value.reason == "HTTP 500" and caught.value.service.startswith("test-")
    assert len(recorder.requests) == 4 and len(sleeps) == 3
    assert sleeps[0] < sleeps[1] < sleeps[2]
    # The host is now marked down: the next call fails fast, without a request.
    with pytest.raises(ServiceUnavailable, match="not retried"):
        client.get("/y")
    assert len(recorder.requests) == 4


def test_long_retry_after_gives_up_at_once(tmp_path):
    recorder = Recorder(httpx.Response(429, headers={"Retry-After": "3600"}))
    client, sleeps = make_client(recorder, tmp_path)
    with pytest.raises(ServiceUnavailable, match="Retry-After 3600"):
        client.get("/x")
    assert len(recorder.requests) == 1 and sleeps == []


def test_4xx_is_returned_not_retried(tmp_path):
    recorder = Recorder(httpx.Response(404, json={"error": "nope"}))
    client, sleeps = make_client(recorder, tmp_path)
    assert client.get("/missing").status == 404
    with pytest.raises(HttpStatusError) as caught:
        client.get_json("/missing")
    assert caught.value.status == 404
    assert len(recorder.requests) == 1 and sleeps == []  # the 404 was cached


def test_timeout_is_retried_once_then_unavailable(tmp_path):
    recorder = Recorder(httpx.ReadTimeout("slow"))
    client, sleeps = make_client(recorder, tmp_path, timeout_s=0.5)
    with pytest.raises(ServiceUnavailable, match="timed out after 0.5s"):
        client.get("/x")
    assert len(recorder.requests) == 2 and len(sleeps) == 1


def test_real_timeout_against_a_silent_server(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        client = HttpClient("silent", url, timeout_s=0.2, max_retries=1, backoff_s=0.01,
                            cache_dir=tmp_path)  # fmt: skip
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable, match="timed out"):
            client.get("/x")
        assert time.monotonic() - started < 3
    finally:
        listener.close()


def test_closed_port_means_unavailable_quickly(tmp_path):
    client = HttpClient("closed", closed_port_url(), backoff_s=0.01, cache_dir=tmp_path)
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable) as caught:
        client.get("/x")
    assert "ConnectError" in caught.value.reason
    assert time.monotonic() - started < 2
    assert "closed unreachable" in str(caught.value)


def test_postlab_offline_short_circuits(tmp_path, monkeypatch):
    recorder = Recorder(httpx.Response(200))
    client, _ = make_client(recorder, tmp_path)
    monkeypatch.setenv("POSTLAB_OFFLINE", "1")
    with pytest.raises(ServiceUnavailable, match="POSTLAB_OFFLINE"):
        client.get("/x")
    assert recorder.requests == []


def test_from_env_reads_base_url_interval_and_headers(monkeypatch):
    monkeypatch.setenv("POSTLAB_DEMO_URL", "http://mirror.test/base/")
    monkeypatch.setenv("POSTLAB_DEMO_SVC_MIN_INTERVAL_S", "0.25")
    monkeypatch.setenv("POSTLAB_HTTP_RETRIES", "5")
    recorder = Recorder(httpx.Response(200, text="hi"))
    client = HttpClient.from_env(
        "demo-svc", "https://real.test", "POSTLAB_DEMO_URL", 3.0,
        headers={"x-api-key": "k"}, transport=httpx.MockTransport(recorder),
    )  # fmt: skip
    assert client.base_url == "http://mirror.test/base"
    assert client.limiter.min_interval_s == 0.25 and client.max_retries == 5
    client.get("/ping", {"a": 1})
    sent = recorder.requests[0]
    assert str(sent.url) == "http://mirror.test/base/ping?a=1"
    assert sent.headers["x-api-key"] == "k" and sent.headers["user-agent"].startswith("postlab/")


def test_keys_never_follow_a_redirect_to_another_host(tmp_path):
    recorder = Recorder(
        httpx.Response(302, headers={"location": "http://service.test/moved"}),
        httpx.Response(302, headers={"location": "http://elsewhere.test/stolen"}),
        httpx.Response(200, text="ok"),
    )
    client, _ = make_client(
        recorder, tmp_path, secret_headers={"x-api-key": "secret-1", "Authorization": "Bearer t"}
    )
    assert client.get("/start").text == "ok"
    hops = [(req.url.host, req.url.path, dict(req.headers)) for req in recorder.requests]
    assert [(host, path) for host, path, _ in hops] == [
        ("service.test", "/start"),
        ("service.test", "/moved"),
        ("elsewhere.test", "/stolen"),
    ]
    # Same origin: the key goes along; another host: neither the key nor the token.
    assert hops[0][2]["x-api-key"] == hops[1][2]["x-api-key"] == "secret-1"
    assert "x-api-key" not in hops[2][2] and "authorization" not in hops[2][2]


def test_an_answer_fetched_with_a_key_is_not_served_to_a_call_without_one(tmp_path):
    keyed = Recorder(httpx.Response(200, text="for key holders"))
    client, _ = make_client(keyed, tmp_path, secret_headers={"x-api-key": "secret-2"})
    assert client.get("/private").text == "for key holders"
    anonymous = Recorder(httpx.Response(200, text="public"))
    other, _ = make_client(anonymous, tmp_path)  # same service name, same cache folder
    assert other.get("/private").text == "public" and len(anonymous.requests) == 1
    cached = list((tmp_path / "cache").rglob("*.json"))
    assert cached and all("secret-2" not in path.read_text() for path in cached)
