"""Distances on the ground, in Python and in SQL, between WGS-84 points."""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import func, literal

EARTH_RADIUS_M = 6_371_008.8


def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def distance_m_sql(lat_column: Any, lng_column: Any, lat: float, lng: float) -> Any:
    """SQL: metres from (lat, lng) to the row's (lat_column, lng_column), by the same formula
    as `distance_m`; least(): rounding can push the term a hair above 1 (asin undefined)."""
    term = func.power(func.sin(func.radians(lat_column - lat) / 2), 2) + func.cos(
        func.radians(literal(lat))
    ) * func.cos(func.radians(lat_column)) * func.power(
        func.sin(func.radians(lng_column - lng) / 2), 2
    )
    return (2 * EARTH_RADIUS_M) * func.asin(func.sqrt(func.least(1.0, term)))


def distance_m_text(lat_column: str, lng_column: str, lat: str, lng: str) -> str:
    """The same formula as SQL text, for statements written as text: `lat`/`lng` are the
    parameters (e.g. `:lat`) or columns of the other point."""
    return f"""2 * {EARTH_RADIUS_M} * asin(sqrt(least(1.0,
        power(sin(radians({lat_column} - {lat}) / 2), 2)
        + cos(radians({lat})) * cos(radians({lat_column}))
          * power(sin(radians({lng_column} - {lng}) / 2), 2)
    )))"""
