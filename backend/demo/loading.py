"""Loading the demo data: categories, the city, its accounts, rewards, volunteers, mediators."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.auth.models import RoleGrant
from backend.core.ids import new_id
from backend.demo.categories import load_demo_categories
from backend.demo.city import (
    CITY_CODE,
    DEMO_ACCOUNTS,
    DISTRICTS,
    GRID_COLUMNS,
    GRID_DLNG,
    edge,
    ensure_users,
    geojson,
    grid_cells,
    union,
)
from backend.demo.mediation import load_demo_mediation
from backend.demo.rewards import load_demo_rewards
from backend.demo.volunteers import load_demo_volunteers
from backend.regions.models import Region, RegionLevel


async def load_demo_data(session: AsyncSession) -> bool:
    """Add the demo city and accounts unless the city exists; True if it added them.

    Only flushes: the caller commits. The demo categories are added either way.
    """
    await load_demo_categories(session)
    exists = await session.execute(select(col(Region.id)).where(col(Region.path) == CITY_CODE))
    if exists.first() is not None:
        await load_demo_rewards(session)
        await load_demo_volunteers(session)
        await load_demo_mediation(session)
        return False
    regions: dict[str, Region] = {}

    def add(code: str, level: RegionLevel, name: str, name_en: str, **extra: Any) -> Region:
        parent = regions.get(code.rpartition(".")[0])
        region = Region(
            id=new_id(),
            path=code,
            parent_id=parent.id if parent else None,
            level=level,
            name=name,
            name_en=name_en,
            **extra,
        )
        regions[code] = region
        return region

    add(CITY_CODE, RegionLevel.city, "广州市", "Guangzhou")
    for district in DISTRICTS:
        district_code = f"{CITY_CODE}.{district.label}"
        add(district_code, RegionLevel.district, district.name, district.name_en)
        for street in district.streets:
            street_code = f"{district_code}.{street.label}"
            street_region = add(street_code, RegionLevel.street, street.name, street.name_en)
            community_boundaries: list[dict[str, Any]] = []
            for position, community in enumerate(street.communities):
                community_code = f"{street_code}.{community.label}"
                west = edge(street.west, GRID_DLNG, position * GRID_COLUMNS)
                cells = grid_cells(street.south, west)
                boundary = geojson(union([geometry for _, geometry in cells]))
                community_boundaries.append(boundary)
                add(
                    community_code,
                    RegionLevel.community,
                    community.name,
                    community.name_en,
                    boundary=boundary,
                )
                short_name = community.name.removesuffix("社区")
                short_name_en = community.name_en.removesuffix(" Community")
                for label, geometry in cells:
                    number = int(label[1:])
                    add(
                        f"{community_code}.{label}",
                        RegionLevel.grid,
                        f"{short_name}第{number}网格",
                        f"{short_name_en} Grid {number}",
                        boundary=geometry,
                    )
            street_region.boundary = geojson(union(community_boundaries))
    session.add_all(regions.values())
    await session.flush()

    users = await ensure_users(session)
    for account in DEMO_ACCOUNTS:
        if account.role is None or account.region is None:
            continue
        session.add(
            RoleGrant(
                id=new_id(),
                user_id=users[account.openid],
                role=account.role,
                region_id=regions[account.region].id,
                region_path=account.region,
            )
        )
    await session.flush()
    await load_demo_rewards(session)
    await load_demo_volunteers(session)
    await load_demo_mediation(session)
    return True
