"""Configuration: defaults, file, environment, precedence, and one-line errors (exit 2)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from monitor.cli import app
from monitor.config import ConfigError, load_settings, parse_duration

runner = CliRunner()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("LABORMON_") and not name.startswith("LABORMON_TEST"):
            monkeypatch.delenv(name)


def test_defaults_match_the_contract() -> None:
    s = load_settings()
    assert s.database.url == "sqlite:///./var/labormon.db"
    assert s.mqtt.url == "mqtt://127.0.0.1:1883"
    assert s.http.bind == "127.0.0.1:8080"
    assert s.smtp.url == ""
    assert not s.smtp.enabled
    assert s.smtp.mail_from == "labormon@localhost"


def test_file_then_env_then_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "labormon.toml"
    config.write_text(
        '[mqtt]\nurl = "mqtt://daemon:s3cret@broker.local:1884"\nkeepalive = 20\n'
        '[smtp]\nurl = "smtp://mail.local:587?starttls=true"\ntimeout = "2m"\n'
    )
    s = load_settings(config)
    assert (s.mqtt.host, s.mqtt.port, s.mqtt.username, s.mqtt.password) == (
        "broker.local",
        1884,
        "daemon",
        "s3cret",
    )
    assert s.smtp.starttls
    assert s.smtp.port == 587
    assert s.smtp.timeout == timedelta(minutes=2)
    monkeypatch.setenv("LABORMON_MQTT_URL", "mqtt://127.0.0.1:1999")
    monkeypatch.setenv("LABORMON_MQTT__KEEPALIVE", "45")
    monkeypatch.setenv("LABORMON_DB", "postgresql://u@db/labormon")
    s = load_settings(config)
    assert s.mqtt.port == 1999
    assert s.mqtt.keepalive == 45
    assert s.database.url == "postgresql://u@db/labormon"
    monkeypatch.setenv("LABORMON_CONFIG", str(config))
    assert load_settings().smtp.timeout == timedelta(minutes=2)
    s = load_settings(overrides={"database": {"url": "sqlite:///x.db"}})
    assert s.database.url == "sqlite:///x.db"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[mqtt]\nbogus = 1\n", "mqtt.bogus: unknown key"),
        ("[nosuch]\nx = 1\n", "nosuch: unknown key"),
        ('[http]\nbind = "8080"\n', "http.bind: must be host:port"),
        (
            '[database]\nurl = "mysql://x"\n',
            "database.url: must be a sqlite:/// or postgresql:// URL",
        ),
        ('[smtp]\ntimeout = "soon"\n', "smtp.timeout:"),
        ("[mqtt\n", "not valid TOML"),
        (
            '[security]\nsecret_key = "short"\n',
            "security.secret_key: must be at least 32 characters",
        ),
    ],
)
def test_bad_file_names_key_and_file(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    assert str(config) in str(info.value)
    assert message in str(info.value)
    result = runner.invoke(app, ["stats", "--config", str(config)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("labormon: ")
    assert message in lines[0]


def test_bad_env_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABORMON_HTTP_BIND", "localhost")
    with pytest.raises(ConfigError, match=r"^environment variable LABORMON_HTTP_BIND: http.bind: "):
        load_settings()
    monkeypatch.delenv("LABORMON_HTTP_BIND")
    monkeypatch.setenv("LABORMON_MQTT__KEEPALIVE", "often")
    with pytest.raises(
        ConfigError, match=r"^environment variable LABORMON_MQTT__KEEPALIVE: mqtt.keepalive"
    ):
        load_settings()


def test_missing_config_file_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["stats", "--config", str(tmp_path / "none.toml")])
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


@pytest.mark.parametrize(
    ("text", "seconds"), [(90, 90), ("90s", 90), ("15m", 900), ("2h", 7200), ("1d", 86400)]
)
def test_durations(text: object, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


def test_the_shipped_example_configuration_is_valid_once_its_placeholders_are_replaced(
    tmp_path: Path,
) -> None:
    example = Path(__file__).resolve().parent.parent / "deploy" / "labormon.toml.example"
    # As shipped, the first placeholder is refused at start with one line naming it.
    with pytest.raises(ConfigError) as caught:
        load_settings(example)
    assert str(caught.value).startswith(f"{example}: database.url: still holds the example's")
    filled = tmp_path / "labormon.toml"
    filled.write_text(example.read_text(encoding="utf-8").replace("CHANGE-ME", "s3cret"))
    settings = load_settings(filled)
    assert settings.database.url.startswith("postgresql://labormon:")
    assert settings.security.secret_key_file == Path("/etc/labormon/secret.key")
    # The placeholder robot is commented out: no group that can never work.
    assert settings.alerting.groups == []
    assert not settings.smtp.enabled


def test_a_placeholder_robot_url_is_refused_at_start(tmp_path: Path) -> None:
    config = tmp_path / "labormon.toml"
    config.write_text(
        '[[alerting.groups]]\nid = "g"\nregion = "430902"\nkind = "wecom"\n'
        'url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=CHANGE-ME"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert str(caught.value) == (
        f"{config}: alerting.groups.0.url: still holds the example's placeholder CHANGE-ME: "
        "put the real value in, or remove (comment out) the entry"
    )
