"""Demo service centers and rewards."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.demo.city import (
    CITY_CODE,
    DECIMALS,
    GRID_COLUMNS,
    GRID_DLAT,
    GRID_DLNG,
    GRID_ROWS,
    edge,
)
from backend.regions.models import Region
from points.models import Reward, RewardStock, ServiceCenter

# --- service centers and rewards -------------------------------------------------------


@dataclass(frozen=True)
class DemoCenter:
    code: str
    community: str
    # The community's block: the street's south-west corner and the community's position.
    street_south: float
    street_west: float
    position: int
    name: str
    name_en: str
    address: str


@dataclass(frozen=True)
class DemoReward:
    key: str  # names the reward's fixed id, so loading twice adds nothing
    name: str
    name_en: str
    description: str
    price: int
    limit: tuple[int, str] | None
    stock: int


DEMO_CENTERS: tuple[DemoCenter, ...] = (
    DemoCenter(
        "gangding-center",
        "gz.tianhe.shipai.gangding",
        23.1300,
        113.3250,
        0,
        "岗顶社区党群服务中心",
        "Gangding Community Service Center",
        "天河路岗顶社区居委会一楼",
    ),
    DemoCenter(
        "shipaidong-center",
        "gz.tianhe.shipai.shipaidong",
        23.1300,
        113.3250,
        1,
        "石牌东社区党群服务中心",
        "Shipai East Community Service Center",
        "石牌东路社区居委会一楼",
    ),
    DemoCenter(
        "fuqian-center",
        "gz.yuexiu.beijing.fuqian",
        23.1200,
        113.2620,
        0,
        "府前社区党群服务中心",
        "Fuqian Community Service Center",
        "府前路社区居委会一楼",
    ),
)


DEMO_REWARDS: tuple[DemoReward, ...] = (
    DemoReward(
        "rice", "东北大米 5kg", "Northeast rice, 5 kg", "五常大米，5 公斤装", 300, (2, "month"), 40
    ),
    DemoReward(
        "oil", "花生油 1.8L", "Peanut oil, 1.8 L", "压榨一级花生油，1.8 升", 250, (2, "month"), 30
    ),
    DemoReward("towel", "纯棉毛巾", "Cotton towel", "纯棉毛巾一条", 60, None, 100),
    DemoReward(
        "detergent",
        "洗衣液 2kg",
        "Laundry detergent, 2 kg",
        "洗衣液 2 公斤装",
        120,
        (1, "week"),
        50,
    ),
)


DEMO_NAMESPACE = uuid.UUID("0193a1f2-0000-7000-8000-00000000d3e0")


async def load_demo_rewards(session: AsyncSession) -> None:
    """Service centers in three communities, and daily necessities stocked at each; what is
    already there (maybe edited, maybe redeemed from) stays as it is."""
    paths = [center.community for center in DEMO_CENTERS] + [CITY_CODE]
    found = await session.execute(
        select(col(Region.path), col(Region.id)).where(col(Region.path).in_(paths))
    )
    regions = {path: region_id for path, region_id in found.all()}
    if len(regions) < len(set(paths)):
        return  # not the demo city
    center_rows = []
    for center in DEMO_CENTERS:
        west = edge(center.street_west, GRID_DLNG, center.position * GRID_COLUMNS)
        center_rows.append(
            {
                "id": uuid.uuid5(DEMO_NAMESPACE, f"center:{center.code}"),
                "code": center.code,
                "name": center.name,
                "name_en": center.name_en,
                "region_id": regions[center.community],
                "region_path": center.community,
                # The middle of the community's block of grids.
                "lat": round(center.street_south + GRID_ROWS * GRID_DLAT / 2, DECIMALS),
                "lng": round(west + GRID_COLUMNS * GRID_DLNG / 2, DECIMALS),
                "address": center.address,
                "opening_hours": "周一至周六 9:00-12:00, 14:30-18:00",
                "active": True,
            }
        )
    await session.execute(
        insert(ServiceCenter).values(center_rows).on_conflict_do_nothing(index_elements=["code"])
    )
    centers = await session.execute(
        select(col(ServiceCenter.id)).where(
            col(ServiceCenter.code).in_([center.code for center in DEMO_CENTERS])
        )
    )
    center_ids = list(centers.scalars())
    reward_rows = [
        {
            "id": uuid.uuid5(DEMO_NAMESPACE, f"reward:{reward.key}"),
            "name": reward.name,
            "name_en": reward.name_en,
            "description": reward.description,
            "price": reward.price,
            "region_id": regions[CITY_CODE],
            "region_path": CITY_CODE,
            "limit_count": reward.limit[0] if reward.limit else None,
            "limit_period": reward.limit[1] if reward.limit else None,
            "active": True,
        }
        for reward in DEMO_REWARDS
    ]
    await session.execute(
        insert(Reward).values(reward_rows).on_conflict_do_nothing(index_elements=["id"])
    )
    stock_rows = [
        {"reward_id": row["id"], "center_id": center_id, "on_hand": reward.stock, "reserved": 0}
        for row, reward in zip(reward_rows, DEMO_REWARDS, strict=True)
        for center_id in center_ids
    ]
    await session.execute(
        insert(RewardStock)
        .values(stock_rows)
        .on_conflict_do_nothing(index_elements=["reward_id", "center_id"])
    )
