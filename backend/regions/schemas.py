"""Request and response bodies of the regions API."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from backend.core.errors import Problem
from backend.core.text import RegionCode, RegionLabel, Text
from backend.regions.coords import CoordSystem
from backend.regions.models import RegionLevel

MAX_IMPORT_FEATURES = 50_000

_GRID_EXAMPLE = {
    "code": "gz.tianhe.shipai.gangding.g01",
    "name": "岗顶社区第1网格",
    "name_en": "Gangding Grid 1",
    "level": "grid",
}
_ANCESTORS_EXAMPLE = [
    {"code": "gz", "name": "广州市", "name_en": "Guangzhou", "level": "city"},
    {"code": "gz.tianhe", "name": "天河区", "name_en": "Tianhe District", "level": "district"},
    {
        "code": "gz.tianhe.shipai",
        "name": "石牌街",
        "name_en": "Shipai Subdistrict",
        "level": "street",
    },
    {
        "code": "gz.tianhe.shipai.gangding",
        "name": "岗顶社区",
        "name_en": "Gangding Community",
        "level": "community",
    },
]
_POLYGON_EXAMPLE = {
    "type": "Polygon",
    "coordinates": [
        [
            [113.3300, 23.1300],
            [113.3329, 23.1300],
            [113.3329, 23.1327],
            [113.3300, 23.1327],
            [113.3300, 23.1300],
        ]
    ],
}


# --- shared by every domain that takes or shows a place ---------------------------------


class LocationIn(BaseModel):
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False, description="Latitude in degrees.")
    lng: float = Field(ge=-180, le=180, allow_inf_nan=False, description="Longitude in degrees.")
    coord: CoordSystem = Field(
        description="`gcj02` (what wx.getLocation gives by default) or `wgs84`."
    )


class RegionBrief(BaseModel):
    code: str
    name: str
    name_en: str | None = None


class PointOut(BaseModel):
    lat: float
    lng: float
    coord: Literal["wgs84"] = "wgs84"


class RegionSummary(BaseModel):
    """A region without its geometry."""

    code: str = Field(description="The region's path, e.g. `gz.tianhe.shipai`.")
    name: str
    name_en: str | None = None
    level: RegionLevel

    model_config = ConfigDict(json_schema_extra={"example": _GRID_EXAMPLE})


class LocatedPoint(BaseModel):
    lat: float
    lng: float
    coord: Literal["wgs84"] = "wgs84"


class LocateResult(BaseModel):
    """The grid containing a point, and the regions above it."""

    grid: RegionSummary
    ancestors: list[RegionSummary] = Field(description="From the city down to the community.")
    point: LocatedPoint = Field(description="The point that was looked up, in WGS-84.")

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "grid": _GRID_EXAMPLE,
                "ancestors": _ANCESTORS_EXAMPLE,
                "point": {"lat": 23.131234, "lng": 113.331234, "coord": "wgs84"},
            }
        }
    )


class RegionDetail(RegionSummary):
    """A region with the regions above it and its direct children."""

    ancestors: list[RegionSummary] = Field(description="From the city down to the parent.")
    children: list[RegionSummary] = Field(description="Direct children, ordered by code.")
    has_boundary: bool = Field(description="Whether the region has a boundary polygon.")
    boundary: dict[str, Any] | None = Field(
        None,
        description="GeoJSON Polygon or MultiPolygon in WGS-84; only with `include=boundary`.",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "code": "gz.tianhe.shipai.gangding",
                "name": "岗顶社区",
                "name_en": "Gangding Community",
                "level": "community",
                "ancestors": _ANCESTORS_EXAMPLE[:3],
                "children": [_GRID_EXAMPLE],
                "has_boundary": True,
                "boundary": None,
            }
        }
    )


def _blank_is_none(value: str | None) -> str | None:
    return value or None


class RegionCreate(BaseModel):
    """A new region under `parent`; its code is `<parent>.<label>`."""

    parent: RegionCode = Field(description="Code of the parent region.")
    label: RegionLabel = Field(
        description="Last part of the new code: lower-case letters, digits, underscore.",
    )
    level: RegionLevel | None = Field(
        None, description="Must be the parent's child level; derived from the parent if omitted."
    )
    name: Text = Field(min_length=1, max_length=100)
    name_en: Text | None = Field(None, max_length=100)
    boundary: dict[str, Any] | None = Field(
        None, description="GeoJSON Polygon or MultiPolygon, in the system named by `coord`."
    )

    _name_en = field_validator("name_en")(_blank_is_none)

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "parent": "gz.tianhe.shipai.gangding",
                "label": "g10",
                "level": "grid",
                "name": "岗顶社区第10网格",
                "name_en": "Gangding Grid 10",
                "boundary": _POLYGON_EXAMPLE,
            }
        }
    )


class RegionUpdate(BaseModel):
    """Fields to change; a field left out stays as it is, `null` clears `name_en`/`boundary`."""

    # Optional but never null: the default is not validated, an explicit null is refused.
    name: Text = Field(None, min_length=1, max_length=100, validate_default=False)
    name_en: Text | None = Field(None, max_length=100)
    boundary: dict[str, Any] | None = Field(
        None, description="GeoJSON Polygon or MultiPolygon, in the system named by `coord`."
    )

    _name_en = field_validator("name_en")(_blank_is_none)

    model_config = ConfigDict(
        json_schema_extra={"example": {"name": "岗顶社区第1网格", "name_en": "Gangding Grid 1"}}
    )


class GridFeature(BaseModel):
    """One grid: `properties` has `code` (full path), `name` and optionally `name_en`."""

    type: Literal["Feature"]
    properties: dict[str, Any] | None = Field(
        None, description="`code` (full path of the grid), `name`, optional `name_en`."
    )
    geometry: dict[str, Any] | None = Field(
        None, description="GeoJSON Polygon or MultiPolygon, in the system named by `coord`."
    )


class GridFeatureCollection(BaseModel):
    """Grids to create or update; at most 50,000 features at once."""

    type: Literal["FeatureCollection"]
    features: list[GridFeature] = Field(
        description=f"At most {MAX_IMPORT_FEATURES} features; more answer 413."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {
                            "code": "gz.tianhe.shipai.gangding.g10",
                            "name": "岗顶社区第10网格",
                            "name_en": "Gangding Grid 10",
                        },
                        "geometry": _POLYGON_EXAMPLE,
                    }
                ],
            }
        }
    )


class GridImportResult(BaseModel):
    created: int = Field(description="Grids that did not exist before.")
    updated: int = Field(description="Existing grids whose name or boundary changed.")
    unchanged: int = Field(description="Existing grids the import left as they were.")

    model_config = ConfigDict(
        json_schema_extra={"example": {"created": 12, "updated": 3, "unchanged": 0}}
    )


class FeatureIssueOut(BaseModel):
    index: int = Field(description="Position of the feature in `features`, from 0.")
    code: str | None = Field(description="The feature's `properties.code`, if it had one.")
    reason: str = Field(description="Stable reason, e.g. `geometry_self_intersection`.")
    message: dict[str, str] = Field(description="The reason in zh-CN and en.")


class GridImportProblem(Problem):
    """`regions.import_invalid` lists every bad feature; `request.invalid` lists `errors`."""

    invalid_count: int | None = Field(None, description="How many features are bad.")
    truncated: bool | None = Field(None, description="True if not every problem is listed.")
    invalid_features: list[FeatureIssueOut] | None = None


__all__ = [
    "MAX_IMPORT_FEATURES",
    "CoordSystem",
    "FeatureIssueOut",
    "GridFeature",
    "GridFeatureCollection",
    "GridImportProblem",
    "GridImportResult",
    "LocateResult",
    "LocatedPoint",
    "RegionCreate",
    "RegionDetail",
    "RegionSummary",
    "RegionUpdate",
]


# A region's code as a query parameter (staff lists and figures).
RegionQuery = Annotated[
    RegionCode | None,
    Query(
        description="A region's code, e.g. `gz.tianhe.shipai`; it must lie in your regions.",
    ),
]
