"""A stand-in for the Hub's repo endpoints on 127.0.0.1, for push and Jobs tests.

It answers what huggingface_hub's create_repo, create_commit and snapshot_download call, in the
Hub's formats: POST /api/repos/create; POST /api/validate-yaml (a README's metadata must be a
YAML mapping); POST /api/{type}s/{repo}/preupload/{rev} (every file "regular", so its bytes come
inline); POST /api/{type}s/{repo}/commit/{rev} (NDJSON, base64 contents); GET /api/whoami-v2;
GET /api/{type}s/{repo}/revision/{rev} and /tree/{rev}; HEAD and GET of
/[{type}s/]{repo}/resolve/{rev}/{path}. Committed files live under root/{type}s/{repo}/, so a
test can load what was pushed.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

_REPO = re.compile(
    r"^/api/(?P<type>models|datasets|spaces)/(?P<repo>[^/]+/[^/]+)/(?P<op>preupload|commit)/(?P<rev>[^/?]+)"
)
_INFO = re.compile(
    r"^/api/(?P<type>models|datasets)/(?P<repo>[^/]+/[^/]+)/(?P<op>revision|tree)/(?P<rev>[^/?]+)"
)
_RESOLVE = re.compile(
    r"^/(?:(?P<type>datasets)/)?(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$"
)


@dataclass
class HubServer:
    """The stand-in Hub; use as a context manager. `repos` maps repo id → its create request."""

    root: Path
    token: str = "hf_standin_token"
    user: str = "tester"
    repos: dict[str, dict] = field(default_factory=dict)
    commits: list[dict] = field(default_factory=list)
    validated: list[dict] = field(default_factory=list)
    _httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> HubServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                server._handle(self)

            def do_GET(self) -> None:  # noqa: N802
                server._read(self, head=False)

            def do_HEAD(self) -> None:  # noqa: N802
                server._read(self, head=True)

            def log_message(self, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address) -> None:
                # A client closing its keep-alive connection is not the stand-in's error.
                if not isinstance(sys.exc_info()[1], ConnectionError):
                    super().handle_error(request, client_address)

        self._httpd = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _post_job(self, handler, path: str, body: bytes) -> None:
        self._reply(handler, 404, {"error": f"no route {path}"})

    def _reply(self, handler, status: int, body: dict | list) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _authorized(self, handler) -> bool:
        if handler.headers.get("Authorization") == f"Bearer {self.token}":
            return True
        self._reply(handler, 401, {"error": "Invalid credentials in Authorization header"})
        return False

    def _files(self, kind: str, repo_id: str) -> list[Path]:
        folder = self.root / kind / repo_id
        return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []

    def _sha(self, repo_id: str) -> str:
        commits = [i for i, c in enumerate(self.commits, 1) if c["repo"] == repo_id]
        return f"{commits[-1] if commits else 0:040x}"

    def _read(self, handler: BaseHTTPRequestHandler, head: bool) -> None:
        """GET and HEAD: the account, repo info and trees, file downloads, then subclasses'."""
        if not self._authorized(handler):
            return
        path = handler.path.split("?")[0]
        if path == "/api/whoami-v2":
            return self._reply(handler, 200, {"name": self.user, "type": "user", "orgs": []})
        if (match := _INFO.match(path)) is not None:
            repo_id, kind = match["repo"], match["type"]
            if repo_id not in self.repos:
                return self._reply(handler, 404, {"error": f"Repository {repo_id} not found"})
            folder = self.root / kind / repo_id
            files = [p.relative_to(folder).as_posix() for p in self._files(kind, repo_id)]
            if match["op"] == "revision":
                siblings = [{"rfilename": name} for name in files]
                body = {"id": repo_id, "sha": self._sha(repo_id), "siblings": siblings}
                return self._reply(handler, 200, body)
            tree = [
                {"type": "file", "path": name, "size": (folder / name).stat().st_size,
                 "oid": hashlib.sha1((folder / name).read_bytes()).hexdigest()}
                for name in files
            ]  # fmt: skip
            return self._reply(handler, 200, tree)
        if (match := _RESOLVE.match(path)) is not None:
            target = self.root / (match["type"] or "models") / match["repo"] / match["path"]
            if not target.is_file():
                return self._reply(handler, 404, {"error": "Entry not found"})
            data = target.read_bytes()
            handler.send_response(200)
            handler.send_header("Content-Length", str(len(data)))
            handler.send_header("ETag", f'"{hashlib.sha1(data).hexdigest()}"')
            handler.send_header("X-Repo-Commit", self._sha(match["repo"]))
            handler.end_headers()
            if not head:
                handler.wfile.write(data)
            return None
        return self._read_more(handler, path, head)

    def _read_more(self, handler, path: str, head: bool) -> None:
        self._reply(handler, 404, {"error": f"no route {path}"})

    def _validate_yaml(self, handler, content: str) -> None:
        """A README's metadata block must be a YAML mapping, as the Hub checks before a commit."""
        head = content.split("---")[1] if content.startswith("---") else ""
        try:
            metadata = yaml.safe_load(head) or {}
        except yaml.YAMLError as error:
            return self._reply(handler, 400, {"errors": [{"message": str(error)}]})
        if not isinstance(metadata, dict):
            return self._reply(handler, 400, {"errors": [{"message": "metadata is not a mapping"}]})
        self.validated.append(metadata)
        return self._reply(handler, 200, {"errors": [], "warnings": []})

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length)
        if handler.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        if not self._authorized(handler):
            return None
        path = handler.path.split("?")[0]
        if path.startswith("/api/jobs/"):
            return self._post_job(handler, path, body)
        if path == "/api/repos/create":
            request = json.loads(body)
            kind = request.get("type") or "model"
            repo_id = (
                f"{request['organization']}/{request['name']}"
                if request.get("organization")
                else request["name"]
            )
            self.repos[repo_id] = {**request, "type": kind}
            prefix = "" if kind == "model" else f"{kind}s/"
            return self._reply(handler, 200, {"url": f"{self.url}/{prefix}{repo_id}"})
        if path == "/api/validate-yaml":
            return self._validate_yaml(handler, json.loads(body)["content"])
        match = _REPO.match(path)
        if match is None:
            return self._reply(handler, 404, {"error": f"no route {path}"})
        repo_id = match["repo"]
        if repo_id not in self.repos:
            return self._reply(handler, 404, {"error": f"Repository {repo_id} not found"})
        if match["op"] == "preupload":
            files = json.loads(body)["files"]
            listed = [
                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files
            ]
            return self._reply(handler, 200, {"files": listed})
        folder = self.root / match["type"] / repo_id
        written = []
        for line in body.decode().splitlines():
            item = json.loads(line)
            if item["key"] != "file":
                continue
            value = item["value"]
            target = folder / value["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(base64.b64decode(value["content"]))
            written.append(value["path"])
        self.commits.append({"repo": repo_id, "type": match["type"], "files": written})
        oid = f"{len(self.commits):040x}"
        return self._reply(
            handler, 200, {"commitUrl": f"{self.url}/{repo_id}/commit/{oid}", "commitOid": oid}
        )
