"""The region tree (city > district > street > community > grid) with ltree paths."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Index, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from backend.core.database import Ltree
from backend.core.models import created_at_field, id_field, timestamp_field


class RegionLevel(StrEnum):
    city = "city"
    district = "district"
    street = "street"
    community = "community"
    grid = "grid"


# The level each level's children have; a grid has none.
CHILD_LEVEL: dict[RegionLevel, RegionLevel | None] = {
    RegionLevel.city: RegionLevel.district,
    RegionLevel.district: RegionLevel.street,
    RegionLevel.street: RegionLevel.community,
    RegionLevel.community: RegionLevel.grid,
    RegionLevel.grid: None,
}


class Region(SQLModel, table=True):
    __tablename__ = "region"
    __table_args__ = (Index("ix_region_path_gist", "path", postgresql_using="gist"),)

    id: uuid.UUID = id_field()
    # The full dotted path is the region's code in the API: `gz.tianhe.shipai.gangding.g01`.
    path: str = Field(sa_type=Ltree, unique=True)
    parent_id: uuid.UUID | None = Field(default=None, foreign_key="region.id", index=True)
    level: RegionLevel = Field(sa_type=String(16))
    name: str = Field(max_length=100)
    name_en: str | None = Field(default=None, max_length=100)
    # GeoJSON geometry (Polygon or MultiPolygon) in WGS-84; grids and communities carry one.
    boundary: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB))
    created_at: datetime = created_at_field()
    updated_at: datetime | None = timestamp_field()
