"""What Grafana needs besides the boards: the PostgreSQL data source and a dashboards
provider, as provisioning files (`labormon dashboards export`) or as the HTTP API's JSON
(`labormon dashboards push`).

Export writes a tree that drops into /etc/grafana/provisioning as it is:

    DIR/datasources/labormon.yaml          the data source
    DIR/dashboards/labormon.yaml           the provider, pointing at grafana.dashboards_path
    DIR/dashboards/labormon/<uid>.json     the boards
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.engine import make_url

from dashboards.build import build_all, render
from dashboards.model import DATASOURCE_TYPE, DATASOURCE_UID, Json
from monitor.config import Settings

#: Written where the database is SQLite: Grafana's built-in data source needs PostgreSQL.
PLACEHOLDER = "CHANGE_ME"
LOOPBACK = {"localhost", "127.0.0.1", "::1"}


@dataclass(frozen=True)
class DatasourceSpec:
    """The Grafana data source the boards read, derived from the configuration."""

    name: str
    uid: str
    host: str  # host:port, as Grafana's PostgreSQL data source wants it
    database: str
    user: str
    password: str
    sslmode: str
    #: True when the configured database is SQLite and the values are placeholders.
    placeholders: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> DatasourceSpec:
        grafana = settings.grafana
        url = make_url(grafana.database_url or settings.database.url)
        if url.get_backend_name() != "postgresql":
            return cls(
                name=grafana.datasource_name,
                uid=grafana.datasource_uid,
                host=f"{PLACEHOLDER}:5432",
                database="labormon",
                user=PLACEHOLDER,
                password=PLACEHOLDER,
                sslmode="require",
                placeholders=True,
            )
        host = url.host or "localhost"
        sslmode = url.query.get("sslmode")
        if isinstance(sslmode, tuple):
            sslmode = sslmode[0]
        return cls(
            name=grafana.datasource_name,
            uid=grafana.datasource_uid,
            host=f"{host}:{url.port or 5432}",
            database=url.database or "",
            user=url.username or "",
            password=url.password if isinstance(url.password, str) else "",
            # Encrypt unless the database is on the same host or the URL says otherwise.
            sslmode=sslmode or ("disable" if host in LOOPBACK else "require"),
        )

    def json_data(self) -> Json:
        return {
            "database": self.database,
            "sslmode": self.sslmode,
            # "12+": the feature level Grafana assumes for the server.
            "postgresVersion": 1200,
            "timescaledb": False,
            "maxOpenConns": 10,
            "maxIdleConns": 5,
            "connMaxLifetime": 14400,
        }

    def api_json(self) -> Json:
        """Body of POST /api/datasources and PUT /api/datasources/uid/:uid."""
        body: Json = {
            "name": self.name,
            "uid": self.uid,
            "type": DATASOURCE_TYPE,
            "access": "proxy",
            "url": self.host,
            "user": self.user,
            "database": self.database,
            "basicAuth": False,
            "isDefault": False,
            "jsonData": self.json_data(),
        }
        if self.password:
            body["secureJsonData"] = {"password": self.password}
        return body

    def provisioning_yaml(self) -> str:
        source: Json = {
            "name": self.name,
            "uid": self.uid,
            "type": DATASOURCE_TYPE,
            "access": "proxy",
            "url": self.host,
            "user": self.user,
            "jsonData": self.json_data(),
            "secureJsonData": {"password": self.password},
            "editable": False,
        }
        header = "# labormon: Grafana data source for the analyst views (v_*).\n"
        if self.placeholders:
            header += (
                "# The configured database is SQLite, but Grafana's built-in data source needs\n"
                f"# PostgreSQL: replace every {PLACEHOLDER} (host, user, password) before use.\n"
            )
        return header + _yaml({"apiVersion": 1, "datasources": [source]})


def provider_yaml(settings: Settings) -> str:
    grafana = settings.grafana
    provider = {
        "name": "labormon",
        "orgId": 1,
        "type": "file",
        "folder": grafana.folder_title,
        "folderUid": grafana.folder_uid,
        # The boards are code: edits in Grafana's UI are not saved back, the next
        # export or push replaces them.
        "allowUiUpdates": False,
        "disableDeletion": False,
        "updateIntervalSeconds": 60,
        "options": {"path": grafana.dashboards_path, "foldersFromFilesStructure": False},
    }
    header = "# labormon: the analysts' boards, read from the JSON files beside this one.\n"
    return header + _yaml({"apiVersion": 1, "providers": [provider]})


def _yaml(data: Any) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def retarget(dashboard: Json, uid: str) -> Json:
    """The dashboard with every reference to the labormon data source pointing at `uid`."""
    if uid == DATASOURCE_UID:
        return dashboard

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if node.get("type") == DATASOURCE_TYPE and node.get("uid") == DATASOURCE_UID:
                return {**node, "uid": uid}
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    result: Json = walk(copy.deepcopy(dashboard))
    return result


def dashboards_for(settings: Settings) -> dict[str, Json]:
    """uid -> dashboard JSON, as configured (data source uid)."""
    return {
        board["uid"]: retarget(board, settings.grafana.datasource_uid)
        for board in build_all().values()
    }


@dataclass(frozen=True)
class Exported:
    files: list[Path]
    datasource: DatasourceSpec


def export(settings: Settings, directory: Path) -> Exported:
    """Write the provisioning tree under `directory` (see the module docstring)."""
    spec = DatasourceSpec.from_settings(settings)
    datasources = directory / "datasources"
    boards = directory / "dashboards" / "labormon"
    for folder in (datasources, boards):
        folder.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []

    ds_file = datasources / "labormon.yaml"
    ds_file.write_text(spec.provisioning_yaml(), encoding="utf-8")
    # It holds the database password: readable by its owner and group (grafana) only.
    os.chmod(ds_file, 0o640)
    files.append(ds_file)

    provider = directory / "dashboards" / "labormon.yaml"
    provider.write_text(provider_yaml(settings), encoding="utf-8")
    files.append(provider)

    built = dashboards_for(settings)
    for old in boards.glob("*.json"):
        if old.stem not in built:
            old.unlink()
    for uid, board in built.items():
        path = boards / f"{uid}.json"
        path.write_text(render(board), encoding="utf-8")
        files.append(path)
    return Exported(files=files, datasource=spec)
