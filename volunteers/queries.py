"""How the parts of the volunteers domain show an activity and the region that organises it."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.regions.models import Region
from volunteers.models import Activity
from volunteers.schemas import ActivityBrief, RegionBrief


async def region_briefs(
    session: AsyncSession, region_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, RegionBrief]:
    """Code and names of each region, in one query."""
    wanted = set(region_ids)
    if not wanted:
        return {}
    rows = await session.execute(
        select(col(Region.id), col(Region.path), col(Region.name), col(Region.name_en)).where(
            col(Region.id).in_(wanted)
        )
    )
    return {
        region_id: RegionBrief(code=path, name=name, name_en=name_en)
        for region_id, path, name, name_en in rows.all()
    }


def brief_fields(activity: Activity, organiser: RegionBrief) -> dict[str, Any]:
    """The fields of `ActivityBrief`, for it and for the views that extend it."""
    return {
        "id": activity.id,
        "type": activity.type,
        "title": activity.title,
        "state": activity.state,
        "place_name": activity.place_name,
        "starts_at": activity.starts_at,
        "ends_at": activity.ends_at,
        "organiser": organiser,
    }


def activity_brief(activity: Activity, organiser: RegionBrief) -> ActivityBrief:
    return ActivityBrief(**brief_fields(activity, organiser))
