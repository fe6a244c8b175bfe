"""Earning rules: points per activity type and the daily cap per member, set by city admins."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.auth.principal import Principal
from backend.core.clock import now
from points.ledger import schemas
from points.ledger.errors import (
    EarningRuleDuplicate,
    EarningRulesAdminOnly,
)
from points.models import (
    PointsEarningRule,
)

# --- earning rules -------------------------------------------------------------------------


def require_rules_admin(principal: Principal) -> None:
    """Earning rules are city-wide: only an admin of a city (a one-label path) sets them."""
    if not principal.is_city_admin:
        raise EarningRulesAdminOnly()


async def list_earning_rules(session: AsyncSession) -> list[PointsEarningRule]:
    rules = await session.execute(
        select(PointsEarningRule).order_by(col(PointsEarningRule.activity_type))
    )
    return list(rules.scalars())


async def replace_earning_rules(
    session: AsyncSession, principal: Principal, rules: Sequence[schemas.EarningRuleIn]
) -> list[PointsEarningRule]:
    """Make the rules exactly these: listed ones are created or changed, others deactivated
    (kept, so the history of what was awarded stays explained)."""
    require_rules_admin(principal)
    wanted: dict[str, schemas.EarningRuleIn] = {}
    for rule in rules:
        if rule.activity_type in wanted:
            raise EarningRuleDuplicate(activity_type=rule.activity_type)
        wanted[rule.activity_type] = rule
    at = now()
    # One replacement at a time: two adding the same activity type would otherwise collide.
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended('points.earning_rules', 0))")
    )
    rules_now = select(PointsEarningRule).execution_options(populate_existing=True)
    existing: Mapping[str, PointsEarningRule] = {
        rule.activity_type: rule for rule in (await session.execute(rules_now)).scalars()
    }
    for activity_type, stored in existing.items():
        if activity_type not in wanted and stored.active:
            stored.active = False
            stored.updated_at = at
    for activity_type, rule in wanted.items():
        found = existing.get(activity_type)
        if found is None:
            session.add(
                PointsEarningRule(
                    activity_type=activity_type,
                    points=rule.points,
                    daily_cap=rule.daily_cap,
                    active=rule.active,
                    created_at=at,
                    updated_at=at,
                )
            )
            continue
        changes = {"points": rule.points, "daily_cap": rule.daily_cap, "active": rule.active}
        if any(getattr(found, name) != value for name, value in changes.items()):
            for name, value in changes.items():
                setattr(found, name, value)
            found.updated_at = at
    await session.flush()
    return await list_earning_rules(session)
