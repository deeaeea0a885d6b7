"""One store, one key: the secret key's check value is kept in the database at first start,
and a daemon or command holding another key refuses to run (issue 19, item 6).

Without it, a host whose secret went missing made a key of its own and went on: personal
data it wrote could not be read by the others, theirs decrypted to nothing, and links
signed by one were refused by the other, all silently.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from monitor.clock import Clock
from monitor.db import Database
from monitor.models import InstallationSetting
from monitor.privacy import Privacy

#: The `installation` row holding the check value.
KEY_CHECK = "secret_key_check"


class KeyMismatch(Exception):
    """The secret key is not the one the data was written with (one line for the operator)."""


def _fingerprint(check: str) -> str:
    value = check[:16]
    return "-".join(value[i : i + 4] for i in range(0, 16, 4))


async def stored_check(db: Database) -> str | None:
    async with db.session() as session:
        row = await session.get(InstallationSetting, KEY_CHECK)
        return row.value if row is not None else None


async def verify_key(db: Database, privacy: Privacy, clock: Clock) -> bool:
    """Compare the key with the store's check value, storing it when the store has none
    yet (returns True then). Raises `KeyMismatch` when they differ. Two first starts with
    different keys race on the insert; the loser sees the winner's value and refuses."""
    existing = await stored_check(db)
    created = False
    if existing is None:
        try:
            async with db.session() as session:
                row = InstallationSetting(
                    name=KEY_CHECK, value=privacy.key_check, created_at=clock.now()
                )
                session.add(row)
            created = True
        except IntegrityError:
            pass
        existing = await stored_check(db)
    if existing != privacy.key_check:
        raise KeyMismatch(
            f"the secret key (fingerprint {privacy.fingerprint}) is not the one this database "
            f"was written with (fingerprint {_fingerprint(existing or '')}); use the "
            "installation's key (security.secret_key_file or LABORMON_SECRET_KEY)"
        )
    return created


async def stored_fingerprint(db: Database) -> str | None:
    check = await stored_check(db)
    return _fingerprint(check) if check else None
