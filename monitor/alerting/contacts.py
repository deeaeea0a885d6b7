"""Who is told: the contacts of a tier for an alert, and the channel each is reached on.

A tier's contacts for an alert in a county are, for the region of that tier in the
county's chain (the county itself, its city, its province, following the registry's
`parent_code`):
- leader accounts (roles `leader` and `duty_officer`; analysts are not paged) with their
  email and personal webhook;
- the contacts of `[[alerting.contacts]]` for that region (a duty room's mailbox);
- the risk alert groups (风险警报群) of `[[alerting.groups]]` for that region.
The `point` tier is the monitoring point's own account (overdue report reminders).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from monitor.config import LEVELS, AlertingConfig, GroupConfig
from monitor.models import Account, Alert, Region
from monitor.regions import CITY, COUNTY, PROVINCE

TIER_NUMBERS = {"province": PROVINCE, "city": CITY, "county": COUNTY, "point": 4}
#: Leader roles that receive alerts and may acknowledge them.
ACTING_ROLES = ("leader", "duty_officer")


@dataclass(frozen=True)
class Contact:
    #: Account id, "contact:<id>" or "group:<id>": the delivery's recipient.
    recipient: str
    #: email | webhook | wecom | dingtalk | feishu
    channel: str
    #: Email address or webhook URL.
    address: str
    tier: str
    levels: frozenset[str] = frozenset(LEVELS)
    #: Set for leader accounts: their emails carry a signed acknowledge link.
    account_id: str | None = None

    @property
    def key(self) -> str:
        return f"{self.channel}:{self.recipient}"


def group_recipient(group: GroupConfig) -> str:
    return f"group:{group.id}"


class Contacts:
    def __init__(self, config: AlertingConfig) -> None:
        self.config = config

    async def region_for_tier(self, session: AsyncSession, code: str, tier: str) -> str | None:
        """The region of `tier` in the chain of `code` (None when the chain has none)."""
        wanted = TIER_NUMBERS[tier]
        current: str | None = code
        for _ in range(4):
            if current is None:
                return None
            region = await session.get(Region, current)
            if region is None:
                return None
            if region.tier == wanted:
                return region.code
            if region.tier < wanted:
                return None  # the alert sits above this tier (a city-wide alert has no county)
            current = region.parent_code
        return None

    async def for_tier(self, session: AsyncSession, alert: Alert, tier: str) -> list[Contact]:
        if tier == "point":
            return await self._point(session, alert)
        region = await self.region_for_tier(session, alert.region_code, tier)
        if region is None:
            return []
        return await self.for_region(session, region, tier)

    async def for_region(self, session: AsyncSession, region: str, tier: str) -> list[Contact]:
        contacts: list[Contact] = []
        leaders = await session.scalars(
            select(Account)
            .where(
                Account.kind == "leader",
                Account.role.in_(ACTING_ROLES),
                Account.status == "active",
                Account.region_code == region,
            )
            .order_by(Account.id)
        )
        for account in leaders:
            if account.email:
                contacts.append(
                    Contact(account.id, "email", account.email, tier, account_id=account.id)
                )
            if account.webhook_url:
                contacts.append(Contact(account.id, "webhook", account.webhook_url, tier))
        for contact in self.config.contacts:
            if contact.region != region:
                continue
            levels = frozenset(contact.levels)
            if contact.email:
                contacts.append(
                    Contact(f"contact:{contact.id}", "email", contact.email, tier, levels)
                )
            if contact.webhook:
                contacts.append(
                    Contact(f"contact:{contact.id}", "webhook", contact.webhook, tier, levels)
                )
        for group in self.config.groups:
            if group.region == region:
                contacts.append(
                    Contact(
                        group_recipient(group),
                        group.kind,
                        group.url,
                        tier,
                        frozenset(group.levels),
                    )
                )
        return contacts

    async def for_account(self, session: AsyncSession, account_id: str, tier: str) -> list[Contact]:
        """One person's own channels (reminders to whoever acknowledged an alert)."""
        account = await session.get(Account, account_id)
        if account is None or account.status != "active":
            return []
        contacts = []
        if account.email:
            contacts.append(
                Contact(account.id, "email", account.email, tier, account_id=account.id)
            )
        if account.webhook_url:
            contacts.append(Contact(account.id, "webhook", account.webhook_url, tier))
        return contacts

    async def _point(self, session: AsyncSession, alert: Alert) -> list[Contact]:
        if not alert.point_id:
            return []
        account = await session.get(Account, alert.point_id)
        if account is None or account.kind != "point" or account.status != "active":
            return []
        contacts = []
        if account.email:
            contacts.append(Contact(account.id, "email", account.email, "point"))
        if account.webhook_url:
            contacts.append(Contact(account.id, "webhook", account.webhook_url, "point"))
        return contacts


async def region_covers(session: AsyncSession, scope: str, code: str) -> bool:
    """True when region `code` is `scope` or lies below it, following the registry."""
    current: str | None = code
    for _ in range(4):
        if current is None:
            return False
        if current == scope:
            return True
        region = await session.get(Region, current)
        current = region.parent_code if region is not None else None
    return False


def may_act(account: Account) -> bool:
    """Leaders and duty officers acknowledge, resolve and silence; analysts only read."""
    return account.kind == "leader" and account.role in ACTING_ROLES and account.status == "active"


async def may_act_on(session: AsyncSession, account: Account, region_code: str) -> bool:
    """A leader may act on alerts of their own region or of regions below it."""
    return may_act(account) and await region_covers(session, account.region_code, region_code)
