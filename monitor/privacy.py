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
import re
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
    every value under a personal key whatever its type, and in other text any run of
    seven digits or more (a phone number typed into a summary) and a name after a word
    that introduces a person ("联系人王五")."""
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out[key] = _mask_personal(key, value) if _is_personal(key) else mask_payload(value)
        return out
    if isinstance(data, list):
        return [mask_payload(v) for v in data]
    if isinstance(data, str):
        return _mask_digit_runs(mask_names(data))
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


# Personal numbers in free text: resident ID numbers, mobile and landline numbers, and any
# other long run of digits (bank cards). Dates ("2025-01-15") and amounts stay readable.
_ID_NUMBER = re.compile(r"(?<!\d)\d{17}[\dXx](?!\d)")
_MOBILE = re.compile(r"(?<!\d)1[3-9]\d[- ]?\d{4}[- ]?\d{4}(?!\d)")
_LANDLINE = re.compile(r"(?<!\d)0\d{2,3}[- ]?\d{7,8}(?!\d)")
_LONG_DIGITS = re.compile(r"(?<!\d)\d{9,}(?!\d)")


def _mask_digits(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def mask_numbers(text: str) -> str:
    """ID, mobile, landline and other long numbers in free text masked (138****5678)."""
    text = _ID_NUMBER.sub(lambda m: m.group(0)[:3] + "*" * 15, text)
    for pattern in (_MOBILE, _LANDLINE, _LONG_DIGITS):
        text = pattern.sub(_mask_digits, text)
    return text


# Names in free text. A petition's summary or an informant's description names people the
# record's personal fields do not hold ("联系人王五", "反映人：张三"): a name is only
# recognised after a word that introduces a person, and only when it starts with a common
# surname, so that "反映人称", "本人在星东建筑工作" and enterprise or place names are left
# as they are.
#: Words after which a person's name follows. 本人 is weak ("本人于去年入职"): a name after
#: it is taken only when a clear boundary ends it.
_STRONG_CUES = (
    "联系人",
    "反映人",
    "投诉人",
    "信访人",
    "举报人",
    "来访人",
    "来电人",
    "求助人",
    "申请人",
    "当事人",
    "姓名",
    "名叫",
    "我叫",
)
_WEAK_CUES = ("本人",)
_CUE = re.compile(
    "(?P<cue>"
    + "|".join(_STRONG_CUES + _WEAK_CUES)
    + r")(?P<sep>[ \t]*[：:][ \t]*|[ \t]+|[是为叫系])?"
)
_COMPOUND_SURNAMES = frozenset(
    [
        "欧阳",
        "司马",
        "上官",
        "诸葛",
        "东方",
        "皇甫",
        "令狐",
        "慕容",
        "尉迟",
        "长孙",
        "宇文",
        "司徒",
        "夏侯",
        "公孙",
        "端木",
        "独孤",
        "南宫",
        "西门",
    ]
)
_SURNAMES = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶"
    "程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾"
    "毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关"
    "兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻"
    "祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿"
    "桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝"
)
#: What may follow a name but cannot start a given name: verbs of saying, particles,
#: the next field of a note, a title.
_AFTER_NAME = (
    "称",
    "说",
    "讲",
    "等",
    "在",
    "的",
    "了",
    "和",
    "与",
    "及",
    "向",
    "也",
    "都",
    "已",
    "于",
    "因",
    "被",
    "把",
    "将",
    "对",
    "到",
    "去",
    "现",
    "系",
    "是",
    "为",
    "反映",
    "表示",
    "告知",
    "要求",
    "带领",
    "来电",
    "来访",
    "投诉",
    "举报",
    "电话",
    "手机",
    "联系",
    "身份证",
    "住址",
    "家住",
    "先生",
    "女士",
    "小姐",
    "师傅",
    "同志",
    "老师",
    "经理",
    "一行",
    "等人",
    "总",
    "厂长",
    "主任",
    "书记",
    "队长",
    "班长",
    "组长",
    "老板",
    "会计",
    "工头",
)
#: Words of this domain that start with a surname character: "举报人为农民工代表" names
#: nobody.
_NOT_NAMES = (
    "农民",
    "项目",
    "包工",
    "司机",
    "全体",
    "全部",
    "单位",
    "车间",
    "管理",
    "施工",
    "时间",
    "明天",
    "明年",
    "常年",
    "安全",
    "文件",
    "万元",
    "金额",
    "钱款",
    "方面",
    "高层",
    "高管",
    "江边",
    "公司",
)
#: A candidate holding one of these is a place ("反映人安化县…"), or, with the characters
#: after it, an enterprise ("举报人江南建筑公司员工").
_PLACE_ENDINGS = frozenset("省市县区镇乡村")
_FIRM_WORDS = ("公司", "建筑", "建工", "集团", "有限", "项目部", "工地", "物业", "酒店", "厂")
_NAME_STAND_IN = "某"


def _is_han(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff"


def _ends_name(text: str, at: int) -> bool:
    """Whether a name may end just before `at`: the text ends, or what follows is not a
    Chinese character, or is a word that follows names."""
    return at >= len(text) or not _is_han(text[at]) or text.startswith(_AFTER_NAME, at)


def _name_at(text: str, start: int, *, strong: bool, separated: bool) -> int:
    """The end of a person's name starting at `start`, or -1 when there is none: a
    surname, then one or two characters of a given name up to a boundary. After a strong
    cue a name without a boundary is taken as three characters (the commonest length).
    A surname that is also a preposition (向, 于, 和) counts only after a separator
    ("联系人：于洋", not "反映人向公司讨薪")."""
    if text.startswith(_NOT_NAMES, start):
        return -1
    if not separated and text.startswith(_AFTER_NAME, start):
        return -1
    if text[start : start + 2] in _COMPOUND_SURNAMES:
        given = start + 2
    elif start < len(text) and text[start] in _SURNAMES:
        given = start + 1
    else:
        return -1
    end, bounded = _given_name_end(text, given, strong=strong)
    if end < 0 or _PLACE_ENDINGS.intersection(text[start:end]):
        return -1
    # A name that runs on into more text may be the start of an enterprise's name.
    if not bounded and any(word in text[start : end + 3] for word in _FIRM_WORDS):
        return -1
    return end


def _given_name_end(text: str, given: int, *, strong: bool) -> tuple[int, bool]:
    """The end of a given name of one or two characters, and whether a boundary ends it."""
    for length in (1, 2):
        end = given + length
        if end > len(text) or not all(_is_han(c) for c in text[given:end]):
            return -1, False
        if text.startswith(_AFTER_NAME, given):
            return -1, False
        if _ends_name(text, end):
            return end, True
    return (given + 2 if strong else -1), False


def mask_names(text: str) -> str:
    """Names written after a word that introduces a person replaced by surname + 某:
    "反映人：张三，电话…" -> "反映人：张某，电话…", "联系人王五、李小明" -> "联系人王某、李某"."""
    out: list[str] = []
    pos = 0
    for cue in _CUE.finditer(text):
        start = cue.end()
        if start < pos:
            continue
        strong = cue.group("cue") not in _WEAK_CUES
        separated = bool(cue.group("sep"))
        while (end := _name_at(text, start, strong=strong, separated=separated)) > 0:
            surname = 2 if text[start : start + 2] in _COMPOUND_SURNAMES else 1
            out.append(text[pos:start] + text[start : start + surname] + _NAME_STAND_IN)
            pos = end
            # A list of names: "联系人王五、李四".
            if not text.startswith("、", end):
                break
            start, separated = end + 1, True
    out.append(text[pos:])
    return "".join(out)


def mask_free_text(text: str) -> str:
    """Free text typed by people (a petition's summary, an informant's description, an
    officer's note) as it may leave the store: names after a cue and personal numbers
    masked; enterprise and place names kept."""
    return mask_numbers(mask_names(text))
