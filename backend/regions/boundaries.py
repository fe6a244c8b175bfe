"""Boundaries: GeoJSON polygons as admins send them, checked and stored in WGS-84."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import shapely

from backend.regions.coords import CoordSystem, to_wgs84
from backend.regions.errors import (
    InvalidBoundary,
)

# --- Boundaries ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BoundaryProblem:
    reason: str
    zh: str
    en: str


class _Bad(Exception):
    def __init__(self, problem: BoundaryProblem) -> None:
        self.problem = problem


def _number(value: Any) -> float:
    # bool is an int in Python but never a coordinate; a huge JSON integer overflows float.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Bad(_MALFORMED)
    try:
        number = float(value)
    except OverflowError:
        raise _Bad(_MALFORMED) from None
    if not math.isfinite(number):
        raise _Bad(_MALFORMED)
    return number


_MALFORMED = BoundaryProblem(
    "geometry_malformed",
    "坐标格式不正确：应为 [经度, 纬度] 数值组成的环",
    "Malformed coordinates: expected rings of [longitude, latitude] numbers",
)


def _ring(raw: Any, coord: CoordSystem) -> list[list[float]]:
    if not isinstance(raw, list):
        raise _Bad(_MALFORMED)
    points: list[list[float]] = []
    for position in raw:
        if not isinstance(position, list) or not 2 <= len(position) <= 3:
            raise _Bad(_MALFORMED)
        lng, lat = _number(position[0]), _number(position[1])
        if not (-180.0 <= lng <= 180.0 and -90.0 <= lat <= 90.0):
            raise _Bad(
                BoundaryProblem(
                    "coordinates_out_of_range",
                    f"坐标 [{lng}, {lat}] 超出范围：经度须在 -180 到 180、纬度须在 -90 到 90 之间"
                    "（注意顺序为 [经度, 纬度]）",
                    f"Coordinate [{lng}, {lat}] is out of range: longitude must be within "
                    "-180..180 and latitude within -90..90 (the order is [longitude, latitude])",
                )
            )
        points.append([lng, lat])
    if len(points) < 4 or len({(x, y) for x, y in points}) < 3:
        raise _Bad(
            BoundaryProblem(
                "ring_too_few_points",
                f"边界环只有 {len(points)} 个点：至少需要 3 个不同的点并首尾闭合（共 4 个）",
                f"A ring has {len(points)} positions: it needs at least 3 distinct points "
                "and must be closed (4 positions)",
            )
        )
    if points[0] != points[-1]:
        raise _Bad(
            BoundaryProblem(
                "ring_not_closed",
                "边界环未闭合：最后一个点必须与第一个点相同",
                "A ring is not closed: its last position must equal its first",
            )
        )
    if coord == "gcj02":
        # Convert each vertex; the first and last stay identical, so the ring stays closed.
        converted = [list(reversed(to_wgs84(lat, lng, "gcj02"))) for lng, lat in points[:-1]]
        points = [*converted, converted[0]]
    return points


def _polygon(raw: Any, coord: CoordSystem) -> list[list[list[float]]]:
    if not isinstance(raw, list) or not raw:
        raise _Bad(_MALFORMED)
    return [_ring(ring, coord) for ring in raw]


def parse_boundary(
    geometry: Any, coord: CoordSystem
) -> tuple[dict[str, Any], BoundaryProblem | None]:
    """A GeoJSON Polygon/MultiPolygon checked and converted to WGS-84, or why it is unusable."""
    if not isinstance(geometry, dict) or not geometry:
        return {}, BoundaryProblem(
            "geometry_missing", "缺少边界几何（geometry）", "The geometry is missing"
        )
    kind = geometry.get("type")
    if kind not in ("Polygon", "MultiPolygon"):
        return {}, BoundaryProblem(
            "geometry_not_polygon",
            f"几何类型为 {kind}，边界必须是 Polygon 或 MultiPolygon",
            f"The geometry is a {kind}; a boundary must be a Polygon or MultiPolygon",
        )
    try:
        raw = geometry.get("coordinates")
        if kind == "Polygon":
            coordinates: Any = _polygon(raw, coord)
            shape: shapely.Geometry = shapely.Polygon(coordinates[0], coordinates[1:])
        else:
            if not isinstance(raw, list) or not raw:
                raise _Bad(_MALFORMED)
            coordinates = [_polygon(part, coord) for part in raw]
            shape = shapely.MultiPolygon([(part[0], part[1:]) for part in coordinates])
    except _Bad as bad:
        return {}, bad.problem
    reason = shapely.is_valid_reason(shape)
    if reason != "Valid Geometry":
        if "Self-intersection" in reason:
            return {}, BoundaryProblem(
                "geometry_self_intersection",
                f"边界自相交（{reason}）",
                f"The boundary intersects itself ({reason})",
            )
        return {}, BoundaryProblem(
            "geometry_invalid", f"边界几何无效（{reason}）", f"The geometry is invalid ({reason})"
        )
    if shape.area <= 0:
        return {}, BoundaryProblem(
            "geometry_empty", "边界面积为零", "The boundary encloses no area"
        )
    return {"type": kind, "coordinates": coordinates}, None


def boundary_or_raise(geometry: Any, coord: CoordSystem) -> dict[str, Any]:
    boundary, problem = parse_boundary(geometry, coord)
    if problem is not None:
        raise InvalidBoundary(reason_zh=problem.zh, reason_en=problem.en)
    return boundary
