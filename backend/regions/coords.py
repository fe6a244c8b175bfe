"""Coordinate systems: phones in China report GCJ-02, the backend stores and compares WGS-84."""

from __future__ import annotations

from typing import Literal

import prcoords

CoordSystem = Literal["gcj02", "wgs84"]


def in_china(lat: float, lng: float) -> bool:
    """Where GCJ-02 applies (prcoords' own bounding box); elsewhere GCJ-02 is WGS-84."""
    return bool(prcoords.sanity_in_china_p(prcoords.Coords(lat, lng)))


def to_wgs84(lat: float, lng: float, coord: CoordSystem) -> tuple[float, float]:
    """`(lat, lng)` in WGS-84 for a point given in `coord`."""
    if coord == "wgs84":
        return lat, lng
    # gcj_wgs_bored only checks the box in its first guess and then shifts the point anyway
    # (with a warning), so points outside China are passed through here.
    if not in_china(lat, lng):
        return lat, lng
    wgs = prcoords.gcj_wgs_bored(prcoords.Coords(lat, lng))
    return float(wgs.lat), float(wgs.lon)


def to_gcj02(lat: float, lng: float) -> tuple[float, float]:
    """`(lat, lng)` in GCJ-02 for a WGS-84 point (what a phone's map expects to draw)."""
    if not in_china(lat, lng):
        return lat, lng
    gcj = prcoords.wgs_gcj(prcoords.Coords(lat, lng), check_china=False)
    return float(gcj.lat), float(gcj.lon)
