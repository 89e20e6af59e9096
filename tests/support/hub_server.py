"""A stand-in for the Hub's repo-writing endpoints on 127.0.0.1, for push tests.

It answers what huggingface_hub's create_repo and create_commit call, in the Hub's formats:
POST /api/repos/create; POST /api/validate-yaml (a README's metadata must be a YAML mapping);
POST /api/{type}s/{repo}/preupload/{rev} (every file "regular", so its bytes come inline); and
POST /api/{type}s/{repo}/commit/{rev} (NDJSON, base64 contents). It writes each committed file
under root/{type}s/{repo}/ so a test can load what was pushed.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

_REPO = re.compile(
    r"^/api/(?P<type>models|datasets|spaces)/(?P<repo>[^/]+/[^/]+)/(?P<op>preupload|commit)/(?P<rev>[^/?]+)"
)


@dataclass
class HubServer:
    """The stand-in Hub; use as a context manager. `repos` maps repo id → its create request."""

    root: Path
    token: str = "hf_standin_token"
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
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                server._handle(self)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _reply(self, handler, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

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
        if handler.headers.get("Authorization") != f"Bearer {self.token}":
            return self._reply(
                handler, 401, {"error": "Invalid credentials in Authorization header"}
            )
        path = handler.path.split("?")[0]
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
