"""`labormon dashboards push`: create or update the folder, the data source and the boards
in a running Grafana through its HTTP API (grafana-client), changing only what differs,
so a second push changes nothing and says so.

Boards are saved with `overwrite`: they are code, and an edit made in Grafana's UI is
replaced (analysts keep their own variants as copies under another uid).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from grafana_client import GrafanaApi
from grafana_client.client import (
    GrafanaClientError,
    GrafanaException,
    GrafanaServerError,
    GrafanaUnauthorizedError,
)

from dashboards.model import Json
from dashboards.provisioning import DatasourceSpec, dashboards_for
from monitor.config import Settings

#: Fields of a dashboard that Grafana assigns on save.
SERVER_FIELDS = ("id", "version")
#: Data source fields we set and Grafana returns as they were sent.
DATASOURCE_FIELDS = ("name", "type", "access", "url", "user", "basicAuth", "isDefault")


class PushError(Exception):
    """Why the push stopped, in one line for the operator."""


@dataclass(frozen=True)
class Change:
    what: str  # folder | datasource | dashboard
    uid: str
    title: str
    action: str  # created | updated | unchanged

    def __str__(self) -> str:
        return f"{self.what} {self.uid} ({self.title}): {self.action}"


@dataclass
class PushReport:
    grafana_version: str
    changes: list[Change] = field(default_factory=list)
    #: Things the operator should know that are not errors (boards we did not make).
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> list[Change]:
        return [c for c in self.changes if c.action != "unchanged"]


def _message(exc: GrafanaException) -> str:
    body = exc.response
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return str(body or exc.message).strip().replace("\n", " ")[:200]


def _unreachable(exc: BaseException) -> str:
    """The useful part of a connection error ('[Errno 111] Connection refused')."""
    text = str(exc)
    found = re.search(r"\[Errno -?\d+\][^'\")\]]*", text)
    return (
        found.group(0).strip() if found else (text.replace("\n", " ")[:200] or type(exc).__name__)
    )


@contextmanager
def _calling(url: str, doing: str) -> Iterator[None]:
    """Turn whatever grafana-client raises into one PushError line saying what failed."""
    try:
        yield
    except GrafanaUnauthorizedError as exc:
        raise PushError(
            f"Grafana at {url} refused the token while {doing} (401 Unauthorized: "
            f"{_message(exc)}); use a service account token with the Editor role"
        ) from None
    except GrafanaClientError as exc:
        code, message = exc.status_code, _message(exc)
        if code == 403:
            raise PushError(
                f"Grafana at {url} denied {doing} (403 Forbidden: {message}); give the "
                "token's service account the Editor role (Admin for data sources)"
            ) from None
        if code == 412:
            status = exc.response.get("status", "") if isinstance(exc.response, dict) else ""
            raise PushError(
                f"Grafana refused {doing} (412 Precondition Failed{f', {status}' if status else ''}"
                f": {message}); it was changed in Grafana meanwhile: push again to overwrite it"
            ) from None
        raise PushError(f"Grafana at {url} refused {doing} ({code}: {message})") from None
    except GrafanaServerError as exc:
        raise PushError(
            f"Grafana at {url} failed while {doing} ({exc.status_code}: {_message(exc)})"
        ) from None
    except GrafanaException as exc:  # timeouts and transport errors, status 0
        raise PushError(f"cannot reach Grafana at {url}: {_unreachable(exc)}") from None
    except OSError as exc:  # connection refused, DNS, TLS: niquests' errors are OSErrors
        raise PushError(f"cannot reach Grafana at {url}: {_unreachable(exc)}") from None


def _get_or_none(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except GrafanaClientError as exc:
        if exc.status_code == 404:
            return None
        raise


def _without_server_fields(dashboard: Json) -> Json:
    return {k: v for k, v in dashboard.items() if k not in SERVER_FIELDS}


def same_dashboard(stored: Json, wanted: Json, folder_uid: str) -> bool:
    return stored.get("meta", {}).get("folderUid") == folder_uid and _without_server_fields(
        stored.get("dashboard", {})
    ) == _without_server_fields(wanted)


def same_datasource(stored: Json, wanted: Json) -> bool:
    if any(stored.get(k) != wanted.get(k) for k in DATASOURCE_FIELDS):
        return False
    json_data = stored.get("jsonData") or {}
    if any(json_data.get(k) != v for k, v in wanted["jsonData"].items()):
        return False
    # Secrets are write-only in Grafana: only whether one is set can be compared.
    has_password = bool((stored.get("secureJsonFields") or {}).get("password"))
    return has_password == ("secureJsonData" in wanted)


class Pusher:
    def __init__(self, url: str, token: str, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        # grafana-client appends "api" to the URL's path, so a sub-path needs its slash.
        self.api = GrafanaApi.from_url(self.url + "/", credential=token, timeout=timeout)

    def close(self) -> None:
        """grafana-client keeps a niquests session open and offers no way to close it."""
        self.api.client.s.close()

    def health(self) -> str:
        """Grafana's version; /api/health needs no token, so this tells unreachable
        apart from unauthorized."""
        with _calling(self.url, "checking its health"):
            info = self.api.client.GET("/health")
        if not isinstance(info, dict) or info.get("database") != "ok":
            raise PushError(f"Grafana at {self.url} is not healthy: {info!r:.200}")
        return str(info.get("version", "unknown"))

    def folder(self, uid: str, title: str) -> Change:
        with _calling(self.url, f"reading folder {uid}"):
            current = _get_or_none(lambda: self.api.folder.get_folder(uid))
        if current is None:
            with _calling(self.url, f"creating folder {uid}"):
                self.api.folder.create_folder(title, uid=uid)
            return Change("folder", uid, title, "created")
        if current.get("title") != title:
            with _calling(self.url, f"renaming folder {uid}"):
                self.api.folder.update_folder(uid, title=title, overwrite=True)
            return Change("folder", uid, title, "updated")
        return Change("folder", uid, title, "unchanged")

    def datasource(self, spec: DatasourceSpec, *, force: bool = False) -> Change:
        wanted = spec.api_json()
        with _calling(self.url, f"reading data source {spec.uid}"):
            current = _get_or_none(lambda: self.api.datasource.get_datasource_by_uid(spec.uid))
        if current is None:
            with _calling(self.url, f"creating data source {spec.uid}"):
                self.api.datasource.create_datasource(wanted)
            return Change("datasource", spec.uid, spec.name, "created")
        if force or not same_datasource(current, wanted):
            with _calling(self.url, f"updating data source {spec.uid}"):
                self.api.datasource.update_datasource_by_uid(spec.uid, wanted)
            return Change("datasource", spec.uid, spec.name, "updated")
        return Change("datasource", spec.uid, spec.name, "unchanged")

    def dashboard(self, board: Json, folder_uid: str, *, force: bool = False) -> Change:
        uid, title = board["uid"], board["title"]
        with _calling(self.url, f"reading dashboard {uid}"):
            current = _get_or_none(lambda: self.api.dashboard.get_dashboard(uid))
        if current is not None and not force and same_dashboard(current, board, folder_uid):
            return Change("dashboard", uid, title, "unchanged")
        with _calling(self.url, f"saving dashboard {uid}"):
            self.api.dashboard.update_dashboard(
                {
                    "dashboard": _without_server_fields(board),
                    "folderUid": folder_uid,
                    "overwrite": True,
                    "message": "labormon dashboards push",
                }
            )
        return Change("dashboard", uid, title, "created" if current is None else "updated")

    def strays(self, folder_uid: str, ours: set[str]) -> list[str]:
        """Boards in our folder that labormon does not make (left alone, reported)."""
        with _calling(self.url, f"listing folder {folder_uid}"):
            found = self.api.search.search_dashboards(type_="dash-db", folder_uids=folder_uid)
        return [
            f"dashboard {hit['uid']} ({hit.get('title', '')}) in folder {folder_uid} is not "
            "one of labormon's boards; left as it is"
            for hit in found
            if hit.get("uid") not in ours
        ]


def push(
    settings: Settings, url: str, token: str, *, force: bool = False, timeout: float = 10.0
) -> PushReport:
    """Bring Grafana in line with the boards; raises PushError with one line on failure."""
    spec = DatasourceSpec.from_settings(settings)
    if spec.placeholders:
        raise PushError(
            "the configured database is SQLite, but Grafana's built-in data source needs "
            "PostgreSQL: set [grafana] database_url (or --db) to a postgresql:// URL"
        )
    grafana = settings.grafana
    boards = dashboards_for(settings)
    pusher = Pusher(url, token, timeout=timeout)
    try:
        report = PushReport(grafana_version=pusher.health())
        report.changes.append(pusher.folder(grafana.folder_uid, grafana.folder_title))
        report.changes.append(pusher.datasource(spec, force=force))
        for board in boards.values():
            report.changes.append(pusher.dashboard(board, grafana.folder_uid, force=force))
        report.notes.extend(pusher.strays(grafana.folder_uid, set(boards)))
        return report
    finally:
        pusher.close()
