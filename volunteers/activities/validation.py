"""Checking what staff send for an activity: the window, the place and its fence."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from shapely.geometry import Polygon
from shapely.validation import explain_validity
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.auth.principal import Principal
from backend.core.clock import storable
from backend.regions.coords import CoordSystem, to_wgs84
from backend.regions.errors import RegionNotFound
from backend.regions.geo import distance_m
from backend.regions.models import Region, RegionLevel
from volunteers.activities import schemas
from volunteers.activities.errors import (
    FenceInvalid,
    OrganiserNotCommunity,
    OrganiserOutsideScope,
    WindowInvalid,
)
from volunteers.attendance.geofence import outside_fence_m
from volunteers.auth import (
    VOLUNTEER_MANAGERS,
)
from volunteers.errors import TeamNotFound
from volunteers.models import (
    Team,
)

MAX_WINDOW = timedelta(hours=24)


# How far ahead an activity may be planned.
MAX_LEAD = timedelta(days=366)


# The place may lie this far outside its polygon (a gate beside the block it guards).
PLACE_NEAR_FENCE_M = 200.0


# No corner of a polygon fence lies farther from the place than the widest radius fence.
MAX_FENCE_REACH_M = float(schemas.MAX_RADIUS_M)


# --- validating what staff send ------------------------------------------------------------


async def organiser(session: AsyncSession, principal: Principal, code: str) -> Region:
    region = (
        await session.execute(select(Region).where(col(Region.path) == code))
    ).scalar_one_or_none()
    if region is None:
        raise RegionNotFound(code=code)
    # Regions are public, so saying which rule failed leaks nothing.
    if RegionLevel(region.level) is not RegionLevel.community:
        raise OrganiserNotCommunity(code=code)
    if not principal.can(VOLUNTEER_MANAGERS, region.path):
        raise OrganiserOutsideScope(code=code)
    return region


async def check_team(session: AsyncSession, team_id: uuid.UUID, region_id: uuid.UUID) -> None:
    """The team must be an active team of the organising community."""
    found = await session.execute(
        select(col(Team.id)).where(
            col(Team.id) == team_id,
            col(Team.community_id) == region_id,
            col(Team.active).is_(True),
        )
    )
    if found.first() is None:
        raise TeamNotFound()


def _fence_error(reason: str, reason_zh: str) -> FenceInvalid:
    return FenceInvalid(reason=reason, reason_zh=reason_zh)


def polygon_in_wgs84(polygon: schemas.PolygonIn, coord: CoordSystem) -> dict[str, Any]:
    """The polygon as stored: a GeoJSON Polygon in WGS-84, checked to be a usable area."""
    ring = polygon.coordinates[0]
    if len(ring) < 4:
        raise _fence_error(
            "a polygon needs at least 4 positions (3 corners and the first again)",
            "多边形至少需要 4 个点（3 个顶点，再加上与起点相同的终点）",
        )
    if ring[0] != ring[-1]:
        raise _fence_error(
            "the ring is not closed: its last position must repeat the first",
            "多边形没有闭合：最后一个点须与第一个点相同",
        )
    if any(not (-180 <= lng <= 180 and -90 <= lat <= 90) for lng, lat in ring):
        raise _fence_error(
            "a position is outside the range of longitude and latitude",
            "有坐标点超出了经纬度范围（须为 [经度, 纬度]）",
        )
    converted = [[lng, lat] for lat, lng in (to_wgs84(lat, lng, coord) for lng, lat in ring)]
    converted[-1] = converted[0]  # the same corner, exactly, whatever the conversion did
    shape = Polygon(converted)
    if not shape.is_valid or shape.area <= 0:
        raise _fence_error(
            f"the polygon is not a valid area ({explain_validity(shape)})",
            "多边形不是有效的区域（边不能相交，面积不能为零）",
        )
    return {"type": "Polygon", "coordinates": [converted]}


def check_fence(
    lat: float, lng: float, radius_m: int | None, polygon: dict[str, Any] | None
) -> None:
    if polygon is None:
        return
    corners = polygon["coordinates"][0]
    if any(distance_m(lat, lng, c[1], c[0]) > MAX_FENCE_REACH_M for c in corners):
        raise _fence_error(
            f"the polygon reaches more than {MAX_FENCE_REACH_M:.0f} m from the place",
            f"多边形的范围超出了活动地点 {MAX_FENCE_REACH_M:.0f} 米",
        )
    away = outside_fence_m(
        lat, lng, centre_lat=lat, centre_lng=lng, radius_m=radius_m, polygon=polygon
    )
    if away > PLACE_NEAR_FENCE_M:
        raise _fence_error(
            f"the place lies {away:.0f} m outside the polygon; draw it around the place",
            f"活动地点在多边形之外 {away:.0f} 米，请围绕活动地点划定范围",
        )


def check_window(starts_at: datetime, ends_at: datetime, at: datetime) -> None:
    if not (storable(starts_at) and storable(ends_at)):
        raise WindowInvalid(reason="a time is out of range", reason_zh="时间超出了可用范围")
    if ends_at <= starts_at:
        raise WindowInvalid(
            reason="it must end after it starts", reason_zh="结束时间须晚于开始时间"
        )
    if ends_at - starts_at > MAX_WINDOW:
        raise WindowInvalid(reason="it may last at most 24 hours", reason_zh="一次活动最长 24 小时")
    if starts_at > at + MAX_LEAD:
        raise WindowInvalid(
            reason="it may start at most a year from now", reason_zh="开始时间最多在一年之后"
        )
