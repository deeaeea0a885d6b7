"""Personal data: masking, encryption keys, and logs that never carry it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import structlog

from monitor.config import SecurityConfig
from monitor.logging import configure, get_logger
from monitor.privacy import Privacy, load_secret, mask_name, mask_payload, mask_phone, masked_text


def test_masks() -> None:
    assert mask_name("张三丰") == "张**"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_payload(
        {"petitioner_name": "张三", "petitioner_phone": "13812345678", "n": [1]}
    ) == {"petitioner_name": "***", "petitioner_phone": "138****5678", "n": [1]}
    assert "13812345678" not in masked_text(b"junk 13812345678 \xff")


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
