"""A stand-in for arXiv, HF (Papers, Hub, datasets-server) and Semantic Scholar on 127.0.0.1.

It serves the fixtures in ``tests/fixtures/online`` by path, in each service's real format,
re-slices Semantic Scholar lists by ``offset``/``limit`` (with ``next``), counts every request,
and can answer the first N matching requests with 429 or 5xx. Point the services at it with
:func:`configure_env`; :func:`closed_port_url` gives an address where nothing listens.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

FIXTURES = Path(__file__).parents[1] / "fixtures" / "online"
BASE_URL_ENVS = (
    "POSTLAB_ARXIV_URL",
    "POSTLAB_ARXIV_HTML_URL",
    "HF_ENDPOINT",
    "POSTLAB_S2_URL",
    "POSTLAB_DATASETS_SERVER_URL",
)
_JSON = "application/json; charset=utf-8"
_S2 = re.compile(r"^/graph/v1/paper/(?P<ref>[^/]+)(?:/(?P<edge>references|citations))?$")


@dataclass
class Seen:
    """One request the server received."""

    path: str
    params: dict[str, list[str]]
    headers: dict[str, str]


@dataclass
class _Failure:
    remaining: int
    status: int
    prefix: str
    retry_after: str | None


@dataclass
class OnlineServer:
    """The stand-in server; use as a context manager or call start()/stop()."""

    fixtures: Path = FIXTURES
    requests: list[Seen] = field(default_factory=list)
    _failures: list[_Failure] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:54321."""
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> OnlineServer:
        """Listen on a free port in a daemon thread."""
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                server._handle(self)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        serve = lambda: self._httpd.serve_forever(poll_interval=0.05)  # noqa: E731
        threading.Thread(target=serve, daemon=True).start()
        return self

    def stop(self) -> None:
        """Shut the server down."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> OnlineServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fail(self, times: int, status: int = 429, prefix: str = "", retry_after: str | None = None):
        """Answer the next ``times`` requests under ``prefix`` with ``status``."""
        with self._lock:
            self._failures.append(_Failure(times, status, prefix, retry_after))

    def count(self, prefix: str = "") -> int:
        """How many requests arrived under a path prefix."""
        with self._lock:
            return sum(1 for r in self.requests if r.path.startswith(prefix))

    def seen(self, prefix: str = "") -> list[Seen]:
        """The requests under a path prefix, oldest first."""
        with self._lock:
            return [r for r in self.requests if r.path.startswith(prefix)]

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        params = parse_qs(parts.query, keep_blank_values=True)
        with self._lock:
            self.requests.append(Seen(parts.path, params, dict(handler.headers.items())))
            failure = next(
                (f for f in self._failures if f.remaining > 0 and parts.path.startswith(f.prefix)),
                None,
            )
            if failure is not None:
                failure.remaining -= 1
        if failure is not None:
            headers = {"Retry-After": failure.retry_after} if failure.retry_after else {}
            body = json.dumps({"error": f"injected {failure.status}"}).encode()
            return self._send(handler, failure.status, _JSON, body, headers)
        status, kind, body = self._route(parts.path, params)
        self._send(handler, status, kind, body)

    @staticmethod
    def _send(handler, status: int, kind: str, body: bytes, headers: dict | None = None) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", kind)
        handler.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(body)

    def _file(self, name: str, kind: str = _JSON) -> tuple[int, str, bytes]:
        path = self.fixtures / name
        if not path.is_file():
            return 404, _JSON, json.dumps({"error": f"{name} not found"}).encode()
        return 200, kind, path.read_bytes()

    def _route(self, path: str, params: dict[str, list[str]]) -> tuple[int, str, bytes]:
        one = {key: values[0] for key, values in params.items()}
        filters = params.get("filter", [])
        arxiv_filter = next((f.split(":", 1)[1] for f in filters if f.startswith("arxiv:")), None)
        if path == "/api/query":
            if "malformed" in one.get("search_query", "") or one.get("id_list", "").endswith("x"):
                return self._file("arxiv_error.xml", "application/atom+xml")
            page = "arxiv_query.xml" if int(one.get("start", 0)) == 0 else "arxiv_query_page2.xml"
            return self._file(page, "application/atom+xml; charset=utf-8")
        if path.startswith("/html/"):
            arxiv_id = re.sub(r"v\d+$", "", path.removeprefix("/html/"))
            return self._file(f"arxiv_html_{arxiv_id}.html", "text/html; charset=utf-8")
        if path == "/api/papers/search":
            return self._file("hf_papers_search.json")
        if path == "/api/daily_papers":
            return self._file("hf_daily_papers.json")
        if path.startswith("/api/papers/"):
            return self._file(f"hf_paper_{path.removeprefix('/api/papers/')}.json")
        if path in ("/api/models", "/api/datasets") and arxiv_filter:
            status, kind, body = self._file(
                f"hf{path[4:].replace('/', '_')}_arxiv_{arxiv_filter}.json"
            )
            return (status, kind, body) if status == 200 else (200, _JSON, b"[]")
        if path == "/api/datasets":
            return self._file("hf_datasets_search.json")
        if path.startswith("/api/datasets/"):
            return self._file(
                f"hf_dataset_{path.removeprefix('/api/datasets/').replace('/', '__')}.json"
            )
        if path in ("/splits", "/first-rows"):
            name = one.get("dataset", "").replace("/", "__")
            if path == "/splits":
                return self._file(f"ds_splits_{name}.json")
            return self._file(f"ds_first_rows_{name}__{one.get('config')}__{one.get('split')}.json")
        match = _S2.match(path)
        if match:
            return self._s2(match.group("ref"), match.group("edge"), one)
        return 404, _JSON, json.dumps({"error": f"no route for {path}"}).encode()

    def _s2(self, ref: str, edge: str | None, one: dict[str, str]) -> tuple[int, str, bytes]:
        paper = ref.split(":", 1)[1] if ref.upper().startswith("ARXIV:") else ref
        if edge is None:
            status, kind, body = self._file(f"s2_paper_{paper}.json")
            if status == 404:
                body = json.dumps({"error": f"Paper with id {ref} not found"}).encode()
            return status, kind, body
        status, _, body = self._file(f"s2_{edge}_{paper}.json")
        data = json.loads(body)["data"] if status == 200 else []
        offset, limit = int(one.get("offset", 0)), int(one.get("limit", 100))
        page: dict = {"offset": offset, "data": data[offset : offset + limit]}
        if offset + limit < len(data):
            page["next"] = offset + limit
        return 200, _JSON, json.dumps(page).encode()


def closed_port_url() -> str:
    """A 127.0.0.1 URL where nothing listens (the port is bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def configure_env(monkeypatch, base_url: str, home: Path) -> None:
    """Point every online service at ``base_url``, with no waits, a private cache, no HF offline."""
    from postlab.tools.io.rate_limits import reset_service_state

    for name in BASE_URL_ENVS:
        monkeypatch.setenv(name, base_url)
    for service in ("ARXIV", "ARXIV_HTML", "HF", "S2", "DATASETS_SERVER"):
        monkeypatch.setenv(f"POSTLAB_{service}_MIN_INTERVAL_S", "0")
    monkeypatch.setenv("POSTLAB_HTTP_BACKOFF_S", "0.01")
    monkeypatch.setenv("POSTLAB_HTTP_TIMEOUT_S", "5")
    monkeypatch.setenv("POSTLAB_HOME", str(home))
    for name in ("HF_HUB_OFFLINE", "POSTLAB_OFFLINE", "S2_API_KEY", "HF_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    # A token saved in the user's HF home must not travel to the stand-in.
    monkeypatch.setattr("huggingface_hub.constants.HF_TOKEN_PATH", str(home / "no-hf-token"))
    reset_service_state()
