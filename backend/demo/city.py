"""Demo data: a small Guangzhou (3 districts, 6 streets, 12 communities, 108 grids) and the
demo accounts that log in through the WeChat emulator with fixed openids.

The geometry is generated, not surveyed: blocks of ~300 m square grids placed near the real
streets, in WGS-84. Everything is deterministic, so the same point lands in the same grid on
every machine.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import shapely
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.auth.models import Role, User
from backend.core.ids import new_id

CITY_CODE = "gz"


GRID_ROWS = 3


GRID_COLUMNS = 3


# ~300 m at 23.1° N: one degree of latitude is ~110.7 km, of longitude ~102.4 km.
GRID_DLAT = 0.0027


GRID_DLNG = 0.0029


DECIMALS = 7


@dataclass(frozen=True)
class DemoCommunity:
    label: str
    name: str
    name_en: str


@dataclass(frozen=True)
class DemoStreet:
    label: str
    name: str
    name_en: str
    # South-west corner of the street's block; its two communities sit side by side, west first.
    south: float
    west: float
    communities: tuple[DemoCommunity, DemoCommunity]


@dataclass(frozen=True)
class DemoDistrict:
    label: str
    name: str
    name_en: str
    streets: tuple[DemoStreet, DemoStreet]


DISTRICTS: tuple[DemoDistrict, ...] = (
    DemoDistrict(
        "tianhe",
        "天河区",
        "Tianhe District",
        (
            DemoStreet(
                "shipai",
                "石牌街",
                "Shipai Subdistrict",
                23.1300,
                113.3250,
                (
                    DemoCommunity("gangding", "岗顶社区", "Gangding Community"),
                    DemoCommunity("shipaidong", "石牌东社区", "Shipai East Community"),
                ),
            ),
            DemoStreet(
                "liede",
                "猎德街",
                "Liede Subdistrict",
                23.1150,
                113.3250,
                (
                    DemoCommunity("liede", "猎德社区", "Liede Community"),
                    DemoCommunity("tancun", "潭村社区", "Tancun Community"),
                ),
            ),
        ),
    ),
    DemoDistrict(
        "yuexiu",
        "越秀区",
        "Yuexiu District",
        (
            DemoStreet(
                "beijing",
                "北京街",
                "Beijing Subdistrict",
                23.1200,
                113.2620,
                (
                    DemoCommunity("fuqian", "府前社区", "Fuqian Community"),
                    DemoCommunity("guangwei", "广卫社区", "Guangwei Community"),
                ),
            ),
            DemoStreet(
                "nonglin",
                "农林街",
                "Nonglin Subdistrict",
                23.1280,
                113.2830,
                (
                    DemoCommunity("meihuacun", "梅花村社区", "Meihuacun Community"),
                    DemoCommunity("zhusigang", "竹丝岗社区", "Zhusigang Community"),
                ),
            ),
        ),
    ),
    DemoDistrict(
        "baiyun",
        "白云区",
        "Baiyun District",
        (
            DemoStreet(
                "jingtai",
                "景泰街",
                "Jingtai Subdistrict",
                23.1600,
                113.2680,
                (
                    DemoCommunity("yunyuan", "云苑社区", "Yunyuan Community"),
                    DemoCommunity("keziling", "柯子岭社区", "Keziling Community"),
                ),
            ),
            DemoStreet(
                "sanyuanli",
                "三元里街",
                "Sanyuanli Subdistrict",
                23.1480,
                113.2450,
                (
                    DemoCommunity("sanyuanli", "三元里社区", "Sanyuanli Community"),
                    DemoCommunity("songbai", "松柏社区", "Songbai Community"),
                ),
            ),
        ),
    ),
)


STAFF_COMMUNITY = "gz.tianhe.shipai.gangding"


STAFF_STREET = "gz.tianhe.shipai"


@dataclass(frozen=True)
class DemoAccount:
    openid: str
    nickname: str
    role: Role | None
    region: str | None
    can: str

    @property
    def description(self) -> str:
        """One line for the README and the serve banner."""
        where = f"{self.role.value} on {self.region}" if self.role else "resident"
        return f"{self.nickname} ({where}): {self.can}"


DEMO_ACCOUNTS: tuple[DemoAccount, ...] = (
    DemoAccount(
        "demo-resident",
        "居民小陈",
        None,
        None,
        "report, complain, request mediation; an approved volunteer of Gangding who leads "
        "its patrol team (岗顶平安巡逻队)",
    ),
    DemoAccount("demo-resident-2", "居民阿珍", None, None, "a second resident (the other party)"),
    DemoAccount("demo-resident-3", "居民老黄", None, None, "a third resident"),
    DemoAccount(
        "demo-grid-worker",
        "网格员小李",
        Role.grid_worker,
        STAFF_COMMUNITY,
        "work the case queue of Gangding community",
    ),
    DemoAccount(
        "demo-community-staff",
        "社区工作人员王姐",
        Role.community_staff,
        STAFF_COMMUNITY,
        "handle cases, approve volunteers, publish activities, redeem points in Gangding",
    ),
    DemoAccount(
        "demo-mediator",
        "调解员周叔",
        Role.mediator,
        STAFF_STREET,
        "mediator of 石牌街和事佬调解工作室: takes neighbourhood, family, property and labour "
        "disputes in Shipai subdistrict",
    ),
    DemoAccount(
        "demo-district-admin",
        "天河区管理员",
        Role.admin,
        "gz.tianhe",
        "manage regions, grids and staff of Tianhe district",
    ),
    DemoAccount(
        "demo-city-admin",
        "广州市管理员",
        Role.admin,
        CITY_CODE,
        "manage the whole city",
    ),
)


def _ring(south: float, west: float, north: float, east: float) -> list[list[float]]:
    return [[west, south], [east, south], [east, north], [west, north], [west, south]]


def edge(origin: float, step: float, index: int) -> float:
    # Neighbours compute a shared edge from the same (origin, index): identical floats, no gap.
    return round(origin + index * step, DECIMALS)


def grid_cells(south: float, west: float) -> list[tuple[str, dict[str, Any]]]:
    """A community's grids, `g01` in the south-west corner, row by row to `g09` north-east."""
    cells: list[tuple[str, dict[str, Any]]] = []
    for row in range(GRID_ROWS):
        for column in range(GRID_COLUMNS):
            number = row * GRID_COLUMNS + column + 1
            ring = _ring(
                edge(south, GRID_DLAT, row),
                edge(west, GRID_DLNG, column),
                edge(south, GRID_DLAT, row + 1),
                edge(west, GRID_DLNG, column + 1),
            )
            cells.append((f"g{number:02d}", {"type": "Polygon", "coordinates": [ring]}))
    return cells


def union(geometries: list[dict[str, Any]]) -> dict[str, Any]:
    merged = shapely.union_all([shapely.geometry.shape(g) for g in geometries])
    # Collinear vertices left where squares met add nothing; drop them. Exterior rings
    # counter-clockwise, as RFC 7946 recommends.
    merged = shapely.orient_polygons(shapely.simplify(merged, 0), exterior_cw=False)
    return dict(shapely.geometry.mapping(merged))


def geojson(geometry: dict[str, Any]) -> dict[str, Any]:
    """Plain lists (mapping() gives tuples) so the stored JSON is what a client would send."""
    return {
        "type": geometry["type"],
        "coordinates": _lists(geometry["coordinates"]),
    }


def _lists(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_lists(item) for item in value]
    return value


async def ensure_users(session: AsyncSession) -> dict[str, uuid.UUID]:
    """The demo users by openid; one who logged in before the demo loaded keeps their row."""
    openids = [account.openid for account in DEMO_ACCOUNTS]
    found = await session.execute(
        select(col(User.openid), col(User.id)).where(col(User.openid).in_(openids))
    )
    users = {openid: user_id for openid, user_id in found.all()}
    for account in DEMO_ACCOUNTS:
        if account.openid not in users:
            user = User(id=new_id(), openid=account.openid, nickname=account.nickname)
            session.add(user)
            users[account.openid] = user.id
    await session.flush()
    return users
