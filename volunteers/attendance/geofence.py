"""Geofences and speeds, judged on WGS-84 points (the API converts GCJ-02 on the way in)."""

from __future__ import annotations

import math
from typing import Any

from shapely.geometry import Point, shape

EARTH_RADIUS_M = 6_371_008.8


def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def outside_fence_m(
    lat: float,
    lng: float,
    *,
    centre_lat: float,
    centre_lng: float,
    radius_m: int | None,
    polygon: dict[str, Any] | None,
) -> float:
    """How far (metres) the point lies outside the fence; 0 inside it."""
    if radius_m is not None:
        return max(0.0, distance_m(lat, lng, centre_lat, centre_lng) - radius_m)
    assert polygon is not None, "an activity has a radius or a polygon"
    area = shape(polygon)
    point = Point(lng, lat)
    if area.covers(point):
        return 0.0
    # The nearest point of the boundary, measured on the ground.
    nearest = area.exterior.interpolate(area.exterior.project(point))
    return distance_m(lat, lng, nearest.y, nearest.x)


def speed_mps(a: tuple[float, float], b: tuple[float, float], seconds: float) -> float:
    """Speed between two (lat, lng) points `seconds` apart; infinite when no time passed."""
    metres = distance_m(a[0], a[1], b[0], b[1])
    if seconds <= 0:
        return math.inf if metres > 1 else 0.0
    return metres / seconds
