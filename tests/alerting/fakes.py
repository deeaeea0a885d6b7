"""A local HTTP server that answers as WeCom, DingTalk and Feishu group robots and as a
generic webhook receiver do, including their error bodies (HTTP 200 with an errcode),
their signature checks and their rate limits. Only what cannot run here is replaced,
and only at the HTTP boundary."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlsplit


@dataclass
class Request:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class ChatServer:
    """WeCom at /cgi-bin/webhook/send, DingTalk at /robot/send, Feishu at
    /open-apis/bot/v2/hook/<id>, generic webhooks at /hook/<name>."""

    now: Callable[[], datetime]
    wecom_keys: set[str] = field(default_factory=set)
    dingtalk_secrets: dict[str, str] = field(default_factory=dict)
    feishu_secrets: dict[str, str] = field(default_factory=dict)
    #: Scripted HTTP statuses per generic hook name, consumed in order (then 200).
    hook_statuses: dict[str, list[int]] = field(default_factory=dict)
    #: Robots over their rate limit answer with the vendor's "too fast" errcode.
    rate_limited: set[str] = field(default_factory=set)
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                request = Request(
                    parts.path,
                    {k: v[0] for k, v in parse_qs(parts.query).items()},
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                )
                server.requests.append(request)
                status, answer = server.answer(request)
                data = json.dumps(answer, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ChatServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def to(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    # ------------------------------------------------------------------ services

    def answer(self, request: Request) -> tuple[int, dict[str, Any]]:
        if request.path == "/cgi-bin/webhook/send":
            return 200, self.wecom(request)
        if request.path == "/robot/send":
            return 200, self.dingtalk(request)
        if request.path.startswith("/open-apis/bot/v2/hook/"):
            return self.feishu(request)
        if request.path.startswith("/hook/"):
            statuses = self.hook_statuses.get(request.path.removeprefix("/hook/"), [])
            status = statuses.pop(0) if statuses else 200
            return status, {"ok": status < 300}
        return 404, {"error": "not found"}

    def wecom(self, request: Request) -> dict[str, Any]:
        key = request.query.get("key", "")
        if key not in self.wecom_keys:
            return {"errcode": 93000, "errmsg": "invalid webhook url, hint: [1737000000_1]"}
        if key in self.rate_limited:
            return {"errcode": 45009, "errmsg": "api freq out of limit"}
        body = request.json
        if body.get("msgtype") == "markdown":
            content = body["markdown"]["content"]
        elif body.get("msgtype") == "text":
            content = body["text"]["content"]
        else:
            return {"errcode": 40008, "errmsg": "invalid message type"}
        if not content:
            return {"errcode": 44004, "errmsg": "empty content"}
        limit = 4096 if body["msgtype"] == "markdown" else 2048
        if len(content.encode()) > limit:
            return {"errcode": 40058, "errmsg": f"content exceed max length {limit}"}
        return {"errcode": 0, "errmsg": "ok"}

    def dingtalk(self, request: Request) -> dict[str, Any]:
        token = request.query.get("access_token", "")
        if token not in self.dingtalk_secrets:
            return {"errcode": 300001, "errmsg": "token is not exist"}
        secret = self.dingtalk_secrets[token]
        timestamp = request.query.get("timestamp", "")
        sign = unquote_plus(request.query.get("sign", ""))
        expected = base64.b64encode(
            hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
        ).decode()
        if not timestamp or not hmac.compare_digest(sign, expected):
            return {"errcode": 310000, "errmsg": "sign not match, more: [https://ding-doc]"}
        if abs(int(timestamp) / 1000 - self.now().timestamp()) > 3600:
            return {"errcode": 310000, "errmsg": "invalid timestamp"}
        if token in self.rate_limited:
            return {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}
        if request.json.get("msgtype") != "markdown":
            return {"errcode": 40035, "errmsg": "缺少参数 json"}
        return {"errcode": 0, "errmsg": "ok"}

    def feishu(self, request: Request) -> tuple[int, dict[str, Any]]:
        hook = request.path.rsplit("/", 1)[-1]
        if hook not in self.feishu_secrets:
            return 200, {
                "code": 19001,
                "msg": "param invalid: incoming webhook access token invalid",
            }
        body = request.json
        secret = self.feishu_secrets[hook]
        if secret:
            timestamp = str(body.get("timestamp", ""))
            expected = base64.b64encode(
                hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256).digest()
            ).decode()
            ok_time = timestamp.isdigit() and abs(int(timestamp) - self.now().timestamp()) <= 3600
            if not ok_time or not hmac.compare_digest(str(body.get("sign", "")), expected):
                return 200, {
                    "code": 19021,
                    "msg": "sign match fail or timestamp is not within one hour from current time",
                }
        if hook in self.rate_limited:
            return 200, {
                "code": 11232,
                "msg": "frequency limited psm[lark.oapi.app_platform_runtime]",
            }
        if body.get("msg_type") not in {"text", "post", "interactive", "image", "share_chat"}:
            return 400, {"code": 9499, "msg": "Bad Request", "data": {}}
        return 200, {
            "StatusCode": 0,
            "StatusMessage": "success",
            "code": 0,
            "data": {},
            "msg": "success",
        }
