"""Geofences and speeds, judged on WGS-84 points (the API converts GCJ-02 on the way in)."""

from __future__ import annotations

import math
from typing import Any

from shapely.geometry import Point, shape

from backend.regions.geo import distance_m


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
