"""Personal data (interfaces §7): encrypted at rest, masked on display, kept out of logs.

Petitioners' names and phones and the people behind informant and leader accounts are
encrypted with a key derived from the installation's secret (Fernet: AES-128-CBC with
HMAC-SHA256). Only code holding the secret, run by an operator, can read them back.
The same secret, through a different derivation, signs acknowledge links.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
from cryptography.fernet import Fernet, InvalidToken

from monitor.config import SecurityConfig

#: Keys whose values are personal data wherever they appear (payloads, log events).
PERSONAL_KEYS = frozenset(
    {
        "petitioner_name",
        "petitioner_phone",
        "informant_name",
        "informant_phone",
        "name_enc",
        "phone_enc",
        "phone",
        "password",
        "token",
        "mqtt_password",
    }
)


class SecretKeyError(Exception):
    """No usable secret key; phrased as one line for the operator."""


def load_secret(config: SecurityConfig, *, create: bool = True) -> bytes:
    """The installation secret: `security.secret_key` (LABORMON_SECRET_KEY) when set, else
    the key file. With `create` (SQLite, one host) a missing key file is created (mode
    0600, its directory 0700) so that a fresh install works without set-up; without it
    (PostgreSQL, where several hosts share the data) a missing key is an error, so that a
    host with a missing secret never makes a key of its own."""
    if config.secret_key:
        return config.secret_key.encode()
    path = Path(config.secret_key_file)
    if path.exists():
        value = path.read_text(encoding="ascii").strip()
        if len(value) < 32:
            raise SecretKeyError(f"{path}: secret key shorter than 32 characters")
        return value.encode()
    if not create:
        raise SecretKeyError(
            f"no secret key: {path} does not exist and security.secret_key is not set; "
            "a PostgreSQL store needs the installation's key (see README, Running it for real)"
        )
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
    value = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(value + "\n")
    if os.geteuid() == 0:  # root's command on the host: the key belongs to the service user
        info = path.parent.stat()
        if (info.st_uid, info.st_gid) != (0, 0):
            os.chown(path, info.st_uid, info.st_gid)
    return value.encode()


def _derive(secret: bytes, purpose: bytes) -> bytes:
    return hmac.new(secret, b"labormon/" + purpose, hashlib.sha256).digest()


class Privacy:
    """Encrypts, decrypts and signs with keys derived from one secret."""

    def __init__(self, secret: bytes) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(_derive(secret, b"personal-data")))
        self.signing_key = _derive(secret, b"signed-links")
        #: Stored in the database at first start (`monitor.keycheck`): another key, another
        #: value. It reveals nothing of the key (a one-way derivation of its own).
        self.key_check = _derive(secret, b"key-check").hex()
        #: Values that did not decrypt with this key (wrong key or damaged data).
        self.decrypt_failures = 0
        #: Called on each failure (the context counts it in a metric).
        self.on_decrypt_failure: Callable[[], None] | None = None

    @property
    def fingerprint(self) -> str:
        """A short name of the key, to compare the keys of two hosts: `1a2b-3c4d-5e6f-7a8b`."""
        value = self.key_check[:16]
        return "-".join(value[i : i + 4] for i in range(0, 16, 4))

    def encrypt(self, value: str | None) -> bytes | None:
        if value is None or value == "":
            return None
        return self._fernet.encrypt(value.encode())

    def decrypt(self, token: bytes | None) -> str | None:
        """For operators with the key only; never call this on a path that logs or notifies."""
        if token is None:
            return None
        try:
            return self._fernet.decrypt(bytes(token)).decode()
        except InvalidToken:
            # Never silent: a wrong key looks exactly like this.
            self.decrypt_failures += 1
            if self.on_decrypt_failure is not None:
                self.on_decrypt_failure()
            structlog.get_logger("labormon.privacy").warning(
                "personal data did not decrypt with this key",
                key_fingerprint=self.fingerprint,
                failures=self.decrypt_failures,
            )
            return None

    def sign(self, message: bytes) -> str:
        mac = hmac.new(self.signing_key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def verify(self, message: bytes, signature: str) -> bool:
        return hmac.compare_digest(self.sign(message), signature)


def mask_name(name: str | None) -> str | None:
    """张三丰 -> 张**: enough for an officer to match a case, not to identify a person."""
    if not name:
        return name
    return name[0] + "*" * max(1, len(name) - 1)


def mask_phone(phone: str | None) -> str | None:
    """13812345678 -> 138****5678."""
    if not phone:
        return phone
    digits = phone.strip()
    if len(digits) <= 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def _is_personal(key: object) -> bool:
    return isinstance(key, str) and key.strip().lower() in PERSONAL_KEYS


def _mask_personal(key: str, value: Any) -> Any:
    """Every value under a personal key, of any type: text, a number, a list, an object."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str | int | float):
        return mask_phone(str(value)) if "phone" in key.lower() else "***"
    if isinstance(value, list):
        return [_mask_personal(key, v) for v in value]
    if isinstance(value, dict):
        return {k: _mask_personal(key, v) for k, v in value.items()}
    return "***"


def mask_payload(data: Any) -> Any:
    """A copy of a decoded payload with personal fields masked (for rejected messages):
    every value under a personal key whatever its type, and any run of seven digits or
    more in other text (a phone number typed into a summary)."""
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out[key] = _mask_personal(key, value) if _is_personal(key) else mask_payload(value)
        return out
    if isinstance(data, list):
        return [mask_payload(v) for v in data]
    if isinstance(data, str):
        return _mask_digit_runs(data)
    if isinstance(data, int) and not isinstance(data, bool) and abs(data) >= 10**9:
        return _mask_digit_runs(str(data))
    return data


def masked_text(payload: bytes | str, limit: int = 16 * 1024) -> str:
    """Printable, masked form of a raw payload to keep for inspection.

    A payload that is not JSON cannot be masked field by field (a trailing comma hides
    a name as well as a phone): only its size and SHA-256 are kept, the parse error is
    the rejection's reason."""
    raw = payload.encode() if isinstance(payload, str) else payload
    try:
        decoded = json.loads(raw)
        # Deep nesting that json.loads still took can overflow the recursive masking.
        return json.dumps(mask_payload(decoded), ensure_ascii=False)[:limit]
    except (ValueError, RecursionError):
        digest = hashlib.sha256(raw).hexdigest()
        return f"(not JSON: {len(raw)} bytes, sha256 {digest}; contents not kept)"


def _mask_digit_runs(text: str) -> str:
    out, run = [], []
    for ch in text + "\0":
        if ch.isdigit():
            run.append(ch)
            continue
        if len(run) >= 7:
            out.append(mask_phone("".join(run)) or "")
        else:
            out.extend(run)
        run = []
        out.append(ch)
    return "".join(out[:-1])
