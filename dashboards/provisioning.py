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
    #: Grafana's `postgresVersion` (major * 100 from PostgreSQL 10 on: 1500 for 15),
    #: read from the server at export; 1200 ("12+") when it cannot be asked.
    postgres_version: int = 1200

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
            # The feature level Grafana assumes for the server: the real one when known.
            "postgresVersion": self.postgres_version,
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


def grafana_version_of(server_version_num: int) -> int:
    """`SHOW server_version_num` (150010) -> Grafana's postgresVersion (1500)."""
    major = server_version_num // 10000
    if major >= 10:
        return major * 100
    return server_version_num // 100  # 9.6 -> 906


async def server_postgres_version(url: str) -> int | None:
    """The PostgreSQL server's version as Grafana wants it, or None if unreachable."""
    from monitor.db import Database

    if not url.startswith(("postgresql", "postgres")):
        return None
    db = Database(url, pool_size=1)
    try:
        async with db.engine.connect() as conn:
            value = await conn.exec_driver_sql("SHOW server_version_num")
            return grafana_version_of(int(value.scalar_one()))
    except Exception:  # unreachable or refused: the default stays
        return None
    finally:
        await db.dispose()


def export(
    settings: Settings,
    directory: Path,
    *,
    group: str | None = None,
    postgres_version: int | None = None,
) -> Exported:
    """Write the provisioning tree under `directory` (see the module docstring). With
    `group` (Grafana's service group), every file and folder written belongs to it and the
    group may read them (the data source file holds a password: 0640)."""
    import dataclasses

    spec = DatasourceSpec.from_settings(settings)
    if postgres_version:
        spec = dataclasses.replace(spec, postgres_version=postgres_version)
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
    if group is not None:
        _give_to_group(directory, [datasources, boards, boards.parent, *files], group)
    return Exported(files=files, datasource=spec)


def _give_to_group(root: Path, paths: list[Path], group: str) -> None:
    """Grafana runs as `grafana`: files written by root 0640 root:root are unreadable to it
    (the same trap as Mosquitto's password file)."""
    import grp

    gid = grp.getgrnam(group).gr_gid
    for path in [root, *paths]:
        os.chown(path, -1, gid)
        mode = os.stat(path).st_mode
        os.chmod(path, (mode & 0o7777) | (0o050 if path.is_dir() else 0o040))
