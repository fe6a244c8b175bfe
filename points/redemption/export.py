"""The staff's CSV export of redemptions."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.auth.models import User
from backend.auth.principal import Principal
from backend.core.clock import storable
from backend.core.spreadsheet import csv_text
from points.models import (
    Redemption,
    RedemptionState,
    Reward,
    ServiceCenter,
)
from points.redemption.catalog import STAFF_ROLES, center_in_scope
from points.redemption.errors import (
    ExportPeriodInvalid,
    ServiceCenterNotFound,
)

MAX_EXPORT_PERIOD = timedelta(days=366)


STATE_ZH = {
    RedemptionState.pending: "待领取",
    RedemptionState.fulfilled: "已领取",
    RedemptionState.cancelled: "已取消",
    RedemptionState.expired: "已过期",
}


# --- the staff's export --------------------------------------------------------------------

CSV_COLUMNS = (
    "redemption_id",
    "created_at",
    "channel",
    "state",
    "member_id",
    "member_nickname",
    "reward_id",
    "reward_name",
    "quantity",
    "unit_price",
    "points_total",
    "fulfilled_at",
    "fulfilled_by",
    "cancelled_at",
    "expired_at",
)


def check_period(start: datetime, end: datetime) -> None:
    if not (storable(start) and storable(end)):
        raise ExportPeriodInvalid()
    if start >= end or end - start > MAX_EXPORT_PERIOD:
        raise ExportPeriodInvalid()


async def export_csv(
    session: AsyncSession,
    principal: Principal,
    center_id: uuid.UUID,
    start: datetime,
    end: datetime,
) -> tuple[ServiceCenter, str]:
    """A center's redemptions made in [start, end), oldest first, as CSV (UTF-8 with BOM,
    so spreadsheet programs read the Chinese names right)."""
    center = await center_in_scope(session, principal, center_id, STAFF_ROLES)
    if center is None:
        raise ServiceCenterNotFound()
    check_period(start, end)
    rows = await session.execute(
        select(Redemption, col(Reward.name), col(User.nickname))
        .join(Reward, col(Reward.id) == col(Redemption.reward_id))
        .join(User, col(User.id) == col(Redemption.member_id))
        .where(
            col(Redemption.center_id) == center.id,
            col(Redemption.created_at) >= start,
            col(Redemption.created_at) < end,
        )
        .order_by(col(Redemption.created_at), col(Redemption.id))
    )
    table = (
        (
            redemption.id,
            redemption.created_at,
            redemption.channel,
            redemption.state,
            redemption.member_id,
            nickname,
            redemption.reward_id,
            reward_name,
            redemption.quantity,
            redemption.unit_price,
            redemption.points_total,
            redemption.fulfilled_at,
            redemption.fulfilled_by,
            redemption.cancelled_at,
            redemption.expired_at,
        )
        for redemption, reward_name, nickname in rows.all()
    )
    return center, csv_text([CSV_COLUMNS, *table])
