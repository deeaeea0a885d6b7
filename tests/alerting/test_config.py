"""The `[alerting]` configuration: defaults from interfaces §5, partial overrides, errors
that name the key, and the example in docs/alerting.md actually loading."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.alerting.escalation import Policies
from monitor.config import ConfigError, load_settings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "alerting.md"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("LABORMON_"):
            monkeypatch.delenv(name)


def test_the_defaults_are_the_contracts() -> None:
    policies = Policies(load_settings())
    one, two, three, four = (policies.levels[lv] for lv in ("I", "II", "III", "IV"))
    assert [(s.after, s.tiers) for s in one.steps] == [
        (timedelta(0), ("county", "city", "province"))
    ]
    assert one.repeat is None
    assert one.repeat_interval == timedelta(minutes=15)
    assert [(s.after, s.tiers) for s in two.steps] == [
        (timedelta(0), ("county", "city")),
        (timedelta(minutes=30), ("province",)),
    ]
    assert [s.after for s in three.steps] == [timedelta(0), timedelta(hours=2), timedelta(hours=6)]
    assert four.steps[0].digest
    assert four.steps[1].after == timedelta(hours=24)


def test_the_example_in_the_docs_loads(tmp_path: Path) -> None:
    block = re.search(r"```toml\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S)
    assert block is not None
    path = tmp_path / "labormon.toml"
    path.write_text(block.group(1), encoding="utf-8")
    settings = load_settings(path)
    alerting = settings.alerting
    assert [g.kind for g in alerting.groups] == ["wecom", "dingtalk", "feishu", "webhook"]
    assert alerting.levels.II.repeat_interval == timedelta(minutes=30)
    # Levels not mentioned keep their defaults.
    assert alerting.levels.I.repeat == "until_acknowledged"
    assert settings.smtp.starttls


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[alerting.levels.V]\nsteps = []", "alerting.levels.V: unknown key"),
        (
            '[alerting.levels.III]\nsteps = [{after = "2h", notify = ["city"]}, '
            '{after = "1h", notify = ["county"]}]',
            "steps must be in order of `after`",
        ),
        (
            '[alerting.levels.II]\nsteps = [{after = "0s", notify = ["town"]}]',
            "alerting.levels.II.steps.0.notify.0",
        ),
        (
            '[[alerting.groups]]\nid = "g"\nregion = "430902"\nkind = "wecom"\nurl = "https://a"\n'
            '[[alerting.groups]]\nid = "g"\nregion = "430903"\nkind = "wecom"\nurl = "https://b"',
            "two [[alerting.groups]] with id 'g'",
        ),
        ('[[alerting.contacts]]\nid = "c"\nregion = "430900"', "needs an email or a webhook"),
    ],
)
def test_bad_alerting_config_names_the_key_and_the_file(
    tmp_path: Path, toml: str, message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    assert str(path) in str(error.value)
    assert message in str(error.value)
