"""Personal data: masking, encryption keys, and logs that never carry it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import structlog

from monitor.config import SecurityConfig
from monitor.logging import configure, get_logger
from monitor.privacy import (
    Privacy,
    load_secret,
    mask_free_text,
    mask_name,
    mask_payload,
    mask_phone,
    masked_text,
)


def test_masks() -> None:
    assert mask_name("张三丰") == "张**"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_payload(
        {"petitioner_name": "张三", "petitioner_phone": "13812345678", "n": [1]}
    ) == {"petitioner_name": "***", "petitioner_phone": "138****5678", "n": [1]}
    assert "13812345678" not in masked_text(b"junk 13812345678 \xff")


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("联系人王五", "联系人王某"),
        ("反映人：张三，电话13812345678", "反映人：张某，电话138****5678"),
        ("投诉人张三称公司跑路", "投诉人张某称公司跑路"),
        ("信访人李小明反映拖欠工资", "信访人李某反映拖欠工资"),
        ("举报人 欧阳娜娜，", "举报人 欧阳某，"),
        ("姓名：赵六；身份证430902199001011234", "姓名：赵某；身份证430***************"),
        ("本人张三，在星东建筑打工", "本人张某，在星东建筑打工"),
        ("联系人王五、李小明", "联系人王某、李某"),
        ("联系人：于洋（0737-4221234）", "联系人：于某（073****1234）"),
    ],
)
def test_names_after_a_cue_and_numbers_in_free_text_are_masked(text: str, masked: str) -> None:
    assert mask_free_text(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "反映人称公司拖欠三个月工资",
        "反映人说老板跑路了",
        "本人在星东建筑工作，本人于去年入职",
        "举报人为农民工代表",
        "反映人向公司讨薪未果",
        "举报人江南建筑公司员工",
        "反映人安化县东坪镇工地",
        "联系人王女士",
        "资阳建工项目部拖欠120名农民工工资2025-01-15",
    ],
)
def test_free_text_without_a_name_is_left_as_it_is(text: str) -> None:
    assert mask_free_text(text) == text


def test_refused_payloads_mask_names_in_free_text() -> None:
    kept = mask_payload({"summary": "联系人王小明13900001111"})
    assert kept == {"summary": "联系人王某139****1111"}


def test_secret_file_is_created_once_with_private_mode(tmp_path: Path) -> None:
    config = SecurityConfig(secret_key_file=tmp_path / "k" / "secret.key")
    first = load_secret(config)
    assert load_secret(config) == first
    assert (tmp_path / "k" / "secret.key").stat().st_mode & 0o777 == 0o600
    p1, p2 = Privacy(first), Privacy(b"x" * 40)
    token = p1.encrypt("王五")
    assert p1.decrypt(token) == "王五"
    assert p2.decrypt(token) is None
    assert p1.verify(b"msg", p1.sign(b"msg"))
    assert not p2.verify(b"msg", p1.sign(b"msg"))


def test_logs_redact_personal_fields(capsys: pytest.CaptureFixture[str]) -> None:
    configure("info", "json")
    try:
        get_logger("t").info(
            "petition stored",
            petition_id="Q1",
            petitioner_name="张三",
            petitioner_phone="138",
            informant_id="inf-1",
        )
        line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    finally:
        structlog.reset_defaults()
    assert line["petition_id"] == "Q1"
    assert line["petitioner_name"] == "[redacted]"
    assert line["petitioner_phone"] == "[redacted]"
    assert line["informant_id"] == "[redacted]"
