"""A local HTTP server answering the parts of Grafana's HTTP API that `labormon dashboards
push` uses, the way Grafana 11 answers them (bodies and status codes, including its
error bodies), and recording every request.

Only what cannot run here is replaced (STYLE habit 6): the client side under test is the
real grafana-client over real HTTP.
"""

from __future__ import annotations

import copy
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

Json = dict[str, Any]

UNAUTHORIZED = {
    "message": "Invalid API key",
    "messageId": "api-key.invalid",
    "statusCode": 401,
    "traceID": "",
}
VERSION_MISMATCH = {
    "message": "The dashboard has been changed by someone else",
    "status": "version-mismatch",
}


def access_denied(permission: str) -> Json:
    return {
        "accessErrorId": "ACE0123456789",
        "message": "You'll need additional permissions to perform this action. "
        f"Permissions needed: {permission}",
        "title": "Access denied",
    }


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    authorization: str | None
    body: Any


@dataclass
class FakeGrafana:
    token: str = "glsa_test_token"
    version: str = "11.3.0"
    #: Permissions the token lacks: writes needing them answer 403.
    denied: set[str] = field(default_factory=set)
    #: Dashboard uids whose save answers 412 version-mismatch (someone saved meanwhile).
    conflicts: set[str] = field(default_factory=set)
    folders: dict[str, Json] = field(default_factory=dict)
    datasources: dict[str, Json] = field(default_factory=dict)
    dashboards: dict[str, Json] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    _ids: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._server: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------------ server

    def start(self) -> str:
        handler = _handler_for(self)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def writes(self) -> list[Request]:
        return [r for r in self.requests if r.method in {"POST", "PUT", "DELETE", "PATCH"}]

    # ------------------------------------------------------------------ routing

    def handle(self, request: Request) -> tuple[int, Any]:
        with self._lock:
            self.requests.append(request)
            path, method = request.path, request.method
            if path == "/api/health" and method == "GET":
                return 200, {"commit": "0123abc", "database": "ok", "version": self.version}
            if request.authorization != f"Bearer {self.token}":
                return 401, UNAUTHORIZED
            parts = path.strip("/").split("/")
            if parts[:2] == ["api", "folders"]:
                return self._folders(method, parts[2:], request.body)
            if parts[:2] == ["api", "datasources"]:
                return self._datasources(method, parts[2:], request.body)
            if parts[:2] == ["api", "dashboards"]:
                return self._dashboards(method, parts[2:], request.body)
            if parts == ["api", "search"] and method == "GET":
                return 200, self._search(request.query)
            return 404, {"message": "Not found"}

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def _folders(self, method: str, rest: list[str], body: Any) -> tuple[int, Any]:
        if method == "GET" and len(rest) == 1:
            folder = self.folders.get(rest[0])
            if folder is None:
                return 404, {
                    "message": "folder not found",
                    "messageId": "folder.notFound",
                    "statusCode": 404,
                    "traceID": "",
                }
            return 200, folder
        if method == "POST" and not rest:
            if "folders:create" in self.denied:
                return 403, access_denied("folders:create")
            uid = body.get("uid")
            if uid in self.folders:
                return 409, {"message": "a folder with the same uid already exists"}
            folder = {
                "id": self._next_id(),
                "uid": uid,
                "title": body["title"],
                "url": f"/dashboards/f/{uid}/",
                "version": 1,
                "canSave": True,
            }
            self.folders[uid] = folder
            return 200, folder
        if method == "PUT" and len(rest) == 1:
            if "folders:write" in self.denied:
                return 403, access_denied("folders:write")
            folder = self.folders.get(rest[0])
            if folder is None:
                return 404, {"message": "folder not found", "messageId": "folder.notFound"}
            folder.update(title=body["title"], version=folder["version"] + 1)
            return 200, folder
        return 405, {"message": "Method not allowed"}

    def _datasources(self, method: str, rest: list[str], body: Any) -> tuple[int, Any]:
        if method == "GET" and len(rest) == 2 and rest[0] == "uid":
            ds = self.datasources.get(rest[1])
            if ds is None:
                return 404, {"message": "Data source not found"}
            return 200, self._public(ds)
        if method == "POST" and not rest:
            if "datasources:create" in self.denied:
                return 403, access_denied("datasources:create")
            if any(d["name"] == body["name"] for d in self.datasources.values()):
                return 409, {"message": "data source with the same name already exists"}
            ds = {**copy.deepcopy(body), "id": self._next_id(), "version": 1, "orgId": 1}
            self.datasources[body["uid"]] = ds
            return 200, {
                "datasource": self._public(ds),
                "id": ds["id"],
                "message": "Datasource added",
                "name": ds["name"],
            }
        if method == "PUT" and len(rest) == 2 and rest[0] == "uid":
            if "datasources:write" in self.denied:
                return 403, access_denied("datasources:write")
            old = self.datasources.get(rest[1])
            if old is None:
                return 404, {"message": "Data source not found"}
            ds = {**copy.deepcopy(body), "id": old["id"], "version": old["version"] + 1}
            ds.setdefault("secureJsonData", old.get("secureJsonData", {}))
            self.datasources[rest[1]] = ds
            return 200, {
                "datasource": self._public(ds),
                "id": ds["id"],
                "message": "Datasource updated",
                "name": ds["name"],
            }
        return 405, {"message": "Method not allowed"}

    @staticmethod
    def _public(ds: Json) -> Json:
        """Grafana never returns secrets, only which ones are set."""
        shown = {k: copy.deepcopy(v) for k, v in ds.items() if k != "secureJsonData"}
        shown["secureJsonFields"] = {k: True for k in ds.get("secureJsonData", {})}
        shown.setdefault("typeLogoUrl", "public/app/plugins/datasource/postgres/img/logo.svg")
        shown.setdefault("readOnly", False)
        return shown

    def _dashboards(self, method: str, rest: list[str], body: Any) -> tuple[int, Any]:
        if method == "GET" and len(rest) == 2 and rest[0] == "uid":
            stored = self.dashboards.get(rest[1])
            if stored is None:
                return 404, {"message": "Dashboard not found", "status": "not-found"}
            return 200, copy.deepcopy(stored)
        if method == "POST" and rest == ["db"]:
            if "dashboards:write" in self.denied:
                return 403, access_denied("dashboards:create")
            dashboard = copy.deepcopy(body.get("dashboard") or {})
            uid, title = dashboard.get("uid"), dashboard.get("title")
            if not title:
                return 400, {"message": "Dashboard title cannot be empty"}
            folder_uid = body.get("folderUid", "")
            if folder_uid and folder_uid not in self.folders:
                return 400, {"message": "folder not found"}
            old = self.dashboards.get(uid)
            if uid in self.conflicts or (
                old
                and not body.get("overwrite")
                and dashboard.get("version") != old["meta"]["version"]
            ):
                return 412, VERSION_MISMATCH
            version = old["meta"]["version"] + 1 if old else 1
            dashboard_id = old["dashboard"]["id"] if old else self._next_id()
            dashboard.update(id=dashboard_id, version=version)
            slug = uid
            self.dashboards[uid] = {
                "dashboard": dashboard,
                "meta": {
                    "type": "db",
                    "slug": slug,
                    "url": f"/d/{uid}/{slug}",
                    "version": version,
                    "folderUid": folder_uid,
                    "folderTitle": self.folders.get(folder_uid, {}).get("title", "General"),
                    "provisioned": False,
                    "canSave": True,
                },
            }
            return 200, {
                "id": dashboard_id,
                "uid": uid,
                "url": f"/d/{uid}/{slug}",
                "status": "success",
                "version": version,
                "slug": slug,
                "folderUid": folder_uid,
            }
        return 405, {"message": "Method not allowed"}

    def _search(self, query: dict[str, list[str]]) -> list[Json]:
        folders = set(query.get("folderUIDs", []))
        return [
            {
                "id": d["dashboard"]["id"],
                "uid": uid,
                "title": d["dashboard"]["title"],
                "type": "dash-db",
                "url": d["meta"]["url"],
                "tags": d["dashboard"].get("tags", []),
                "folderUid": d["meta"]["folderUid"],
                "folderTitle": d["meta"]["folderTitle"],
            }
            for uid, d in sorted(self.dashboards.items())
            if not folders or d["meta"]["folderUid"] in folders
        ]


def _handler_for(grafana: FakeGrafana) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            status, payload = grafana.handle(
                Request(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query),
                    authorization=self.headers.get("Authorization"),
                    body=body,
                )
            )
            data = json.dumps(payload, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the request log is `grafana.requests`

    return Handler
