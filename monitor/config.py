"""Configuration: one TOML file plus `LABORMON_*` environment overrides, validated up front.

Precedence, highest first: command-line options (`--db`, ...), the contract's flat
environment variables (`LABORMON_DB`, `LABORMON_MQTT_URL`, ...), nested environment
variables (`LABORMON_MQTT__CLIENT_ID`), the TOML file, the defaults below.

A bad key or value is reported as one line naming the key and where it came from
(`ConfigError`), and the CLI exits 2 on it.
"""

from __future__ import annotations

import os
import re
import socket
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

ENV_PREFIX = "LABORMON_"

#: The contract's flat environment variables (CONTRACT §4) and the key each sets.
ENV_ALIASES: dict[str, tuple[str, ...]] = {
    "LABORMON_DB": ("database", "url"),
    "LABORMON_MQTT_URL": ("mqtt", "url"),
    "LABORMON_HTTP_BIND": ("http", "bind"),
    "LABORMON_SMTP_URL": ("smtp", "url"),
    "LABORMON_MAIL_FROM": ("smtp", "mail_from"),
    "LABORMON_SECRET_KEY": ("security", "secret_key"),
}

DEFAULT_DB_URL = "sqlite:///./var/labormon.db"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d|w)?\s*$")
_UNITS = {
    "ms": 0.001,
    "s": 1,
    None: 1,
    "m": 60,
    "min": 60,
    "h": 3600,
    "d": 86400,
    "w": 7 * 86400,
}


def parse_duration(value: Any) -> Any:
    """Accept `90`, `"90s"`, `"15m"`, `"2h"`, `"1d"` as well as timedelta and ISO 8601."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    return value


#: A duration written as seconds or with a unit: "30s", "15m", "2h", "1d".
Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class Section(BaseModel):
    """A configuration table: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


class DatabaseConfig(Section):
    url: str = DEFAULT_DB_URL
    #: Connection pool size on PostgreSQL (SQLite uses one writer at a time anyway).
    pool_size: int = Field(default=10, ge=1, le=200)

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        scheme = value.split(":", 1)[0].split("+", 1)[0]
        if scheme not in {"sqlite", "postgresql", "postgres"}:
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        return value


class MqttConfig(Section):
    url: str = "mqtt://127.0.0.1:1883"
    #: Stable client id: the broker keeps this daemon's persistent session under it.
    client_id: str = Field(default_factory=lambda: f"labormon-{socket.gethostname()}")
    #: Shared-subscription group (MQTT 5 `$share/<group>/...`) so that several daemons
    #: split the input; empty for plain subscriptions.
    shared_group: str = "labormon"
    topic_prefix: str = "labormon/v1"
    session_expiry: Duration = timedelta(days=7)
    keepalive: int = Field(default=30, ge=5, le=3600)
    #: Payloads larger than this are rejected without being parsed.
    max_payload_bytes: int = Field(default=64 * 1024, ge=1024)

    @field_validator("url")
    @classmethod
    def _mqtt_scheme(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"mqtt", "mqtts"} or not parts.hostname:
            raise ValueError("must look like mqtt://[user:password@]host:port")
        return value

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    @property
    def username(self) -> str | None:
        user = urlsplit(self.url).username
        return unquote(user) if user else None

    @property
    def password(self) -> str | None:
        password = urlsplit(self.url).password
        return unquote(password) if password else None

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme == "mqtts"


class HttpConfig(Section):
    bind: str = "127.0.0.1:8080"
    #: The address leaders' browsers reach the console and acknowledge links at.
    public_url: str = ""

    @field_validator("bind")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError("must be host:port, for example 127.0.0.1:8080")
        return value

    @property
    def host(self) -> str:
        return self.bind.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.bind.rpartition(":")[2])

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in {"0.0.0.0", "::"} else self.host
        return f"http://{host}:{self.port}"


class SmtpConfig(Section):
    #: `smtp://[user:password@]host:port[?starttls=true]` or `smtps://...` (implicit TLS);
    #: empty switches mail off.
    url: str = ""
    mail_from: str = "labormon@localhost"
    #: Overall limit for one message: connect, greet, authenticate, send.
    timeout: Duration = timedelta(seconds=30)

    @field_validator("url")
    @classmethod
    def _smtp_scheme(cls, value: str) -> str:
        if value:
            parts = urlsplit(value)
            if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
                raise ValueError("must look like smtp://[user:password@]host:port[?starttls=true]")
        return value

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "localhost"

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (465 if parts.scheme == "smtps" else 25)

    @property
    def username(self) -> str | None:
        user = urlsplit(self.url).username
        return unquote(user) if user else None

    @property
    def password(self) -> str | None:
        password = urlsplit(self.url).password
        return unquote(password) if password else None

    @property
    def use_tls(self) -> bool:
        return urlsplit(self.url).scheme == "smtps"

    @property
    def starttls(self) -> bool:
        query = parse_qs(urlsplit(self.url).query)
        return query.get("starttls", ["false"])[0].lower() in {"1", "true", "yes"}


class SecurityConfig(Section):
    #: Key for signed acknowledge links and for encrypting personal data at rest.
    #: Several daemons sharing a database must share it. When empty, the key is read
    #: from (or, the first time, written to) `secret_key_file`.
    secret_key: str = ""
    secret_key_file: Path = Path("./var/secret.key")

    @field_validator("secret_key")
    @classmethod
    def _long_enough(cls, value: str) -> str:
        if value and len(value) < 32:
            raise ValueError("must be at least 32 characters (use `openssl rand -hex 32`)")
        return value


class LoggingConfig(Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    #: `json` for machines (journald, Loki), `console` for people.
    format: Literal["json", "console", "auto"] = "auto"


class OrganisationConfig(Section):
    #: The union running this installation: its city code (tier 2) and province (tier 1).
    city_code: str = "430900"
    province_code: str = "430000"
    timezone: str = "Asia/Shanghai"

    @field_validator("city_code", "province_code")
    @classmethod
    def _six_digits(cls, value: str) -> str:
        if not re.fullmatch(r"\d{6}", value):
            raise ValueError("must be a 6-digit GB/T 2260 code")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class DetectorsConfig(Section):
    """`[detectors]`: when and how risk is scored (docs/detectors.md)."""

    enabled: bool = True
    #: Poll for unchecked records this often when no wake-up arrives.
    poll_interval: Duration = timedelta(seconds=30)
    #: Records claimed per transaction by the event-severity check.
    batch_size: int = Field(default=500, ge=1, le=50_000)
    #: Local time of the nightly full re-score (HH:MM).
    rescore_at: str = "02:30"
    #: Local time and interval of the forecaster's retraining.
    retrain_at: str = "03:30"
    retrain_every: Duration = timedelta(days=7)
    #: A job whose daemon died is taken over after this long.
    job_stale_after: Duration = timedelta(hours=2)
    #: Risk findings are written at or above this level ("I".."IV").
    finding_min_level: Literal["I", "II", "III", "IV"] = "IV"
    #: Score thresholds of the levels (0-100).
    level_i: float = Field(default=85.0, ge=0, le=100)
    level_ii: float = Field(default=70.0, ge=0, le=100)
    level_iii: float = Field(default=55.0, ge=0, le=100)
    level_iv: float = Field(default=40.0, ge=0, le=100)
    #: CONTRACT §5 people thresholds of a reported event.
    event_level_i_people: int = Field(default=100, ge=1)
    event_level_ii_people: int = Field(default=30, ge=1)
    event_level_iii_people: int = Field(default=10, ge=1)
    owner_absconded_level: Literal["I", "II", "III", "IV"] = "II"
    #: The forecaster is trained only with at least this many incidents in history.
    min_history_incidents: int = Field(default=30, ge=5)
    #: Petition surges: window, baseline, significance (normal / pre-festival season).
    surge_window_days: int = Field(default=28, ge=7, le=120)
    surge_baseline_days: int = Field(default=91, ge=28, le=730)
    surge_alpha: float = Field(default=0.01, gt=0, lt=0.5)
    surge_alpha_festival: float = Field(default=0.05, gt=0, lt=0.5)

    @field_validator("rescore_at", "retrain_at")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError("must be a local time HH:MM, for example 02:30")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> DetectorsConfig:
        if not self.level_i >= self.level_ii >= self.level_iii >= self.level_iv:
            raise ValueError("level thresholds must satisfy level_i >= level_ii >= ... >= level_iv")
        if not (
            self.event_level_i_people > self.event_level_ii_people > self.event_level_iii_people
        ):
            raise ValueError("event people thresholds must decrease from level I to III")
        return self


class _AliasEnvSource(PydanticBaseSettingsSource):
    """The contract's flat variables (`LABORMON_DB`, ...), which nested parsing cannot see."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # pragma: no cover - __call__ does the work

    def __call__(self) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for name, (section, key) in ENV_ALIASES.items():
            if name in os.environ:
                result.setdefault(section, {})[key] = os.environ[name]
        return result


class Settings(BaseSettings):
    """The whole configuration. Every table rejects unknown keys."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    #: Set by `load()`; the file the values came from, for error messages.
    config_file: ClassVar[Path | None] = None

    database: DatabaseConfig = DatabaseConfig()
    mqtt: MqttConfig = MqttConfig()
    http: HttpConfig = HttpConfig()
    smtp: SmtpConfig = SmtpConfig()
    security: SecurityConfig = SecurityConfig()
    logging: LoggingConfig = LoggingConfig()
    organisation: OrganisationConfig = OrganisationConfig()
    detectors: DetectorsConfig = DetectorsConfig()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [
            init_settings,
            _AliasEnvSource(settings_cls),
            _NestedEnvSource(settings_cls),
        ]
        if cls.config_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=cls.config_file))
        return tuple(sources)


class _NestedEnvSource(EnvSettingsSource):
    """`LABORMON_<TABLE>__<KEY>`; the flat contract names and our own control variables
    (`LABORMON_CONFIG`, `LABORMON_TEST_*`) are not configuration keys."""

    def __call__(self) -> dict[str, Any]:
        data = super().__call__()
        return {k: v for k, v in data.items() if k in Settings.model_fields}


class ConfigError(Exception):
    """A configuration problem, phrased as one line for the operator."""


def _origin(loc: tuple[str | int, ...], config_file: Path | None) -> str:
    key = ".".join(str(p) for p in loc)
    for name, target in ENV_ALIASES.items():
        if target == tuple(loc[: len(target)]) and name in os.environ:
            return f"environment variable {name}"
    nested = ENV_PREFIX + "__".join(str(p).upper() for p in loc[:2])
    if nested in os.environ:
        return f"environment variable {nested}"
    if config_file is not None:
        return str(config_file)
    return f"key {key}"


def load_settings(
    config_file: str | Path | None = None,
    *,
    overrides: dict[str, Any] | None = None,
) -> Settings:
    """Read and validate the configuration, or raise `ConfigError` with one clear line."""
    path_text = config_file or os.environ.get("LABORMON_CONFIG")
    path = Path(path_text) if path_text else None
    if path is not None:
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    Settings.config_file = path
    try:
        return Settings(**(overrides or {}))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        key = ".".join(str(p) for p in loc) or "(top level)"
        where = _origin(loc, path)
        reason = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            reason = "unknown key"
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise ConfigError(f"{where}: {key}: {reason}{more}") from exc
    finally:
        Settings.config_file = None
