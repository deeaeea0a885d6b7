"""Who receives a monthly report: one rule for the scheduled mailing and the signed one."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from monitor.context import Context
from monitor.models import Account, Region
from monitor.regions import CITY, ancestors, tier_of


async def report_recipients(
    ctx: Context, session: AsyncSession, region: str | None = None
) -> list[tuple[str | None, str]]:
    """Leader accounts of the configured tiers with an email, in the report's region
    (a city's: and its counties; the installation's own report: and the regions above
    it, a city's province), then, for the installation's own report, the configured
    addresses; each address once.

    A city's report within a province's installation goes to that city's leaders
    only; the province's leaders get the province report."""
    org = ctx.settings.organisation
    config = ctx.settings.report
    region = region or org.scope_code
    own = region == org.scope_code
    codes = {region}
    if own:
        codes.update(ancestors(region))
    if tier_of(region) == CITY:
        # A city's counties (when [report] recipient_tiers has 3); a province's cities
        # get their own reports instead.
        counties = await session.execute(select(Region.code).where(Region.parent_code == region))
        codes.update(code for (code,) in counties)
    accounts = await session.execute(
        select(Account.id, Account.email)
        .where(
            Account.kind == "leader",
            Account.status == "active",
            Account.email.is_not(None),
            Account.tier.in_(config.recipient_tiers),
            Account.region_code.in_(sorted(codes)),
        )
        .order_by(Account.tier, Account.id)
    )
    seen: set[str] = set()
    out: list[tuple[str | None, str]] = []
    for account_id, address in accounts:
        if address and address.lower() not in seen:
            seen.add(address.lower())
            out.append((account_id, address))
    for address in config.recipients if own else ():
        if address.lower() not in seen:
            seen.add(address.lower())
            out.append(("report.recipients", address))
    return out
