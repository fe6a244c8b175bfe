"""Demo data: a small Guangzhou (3 districts, 6 streets, 12 communities, 108 grids) and the
demo accounts that log in through the WeChat emulator with fixed openids, and the report and
complaint categories with their SLAs.

The geometry is generated, not surveyed: blocks of ~300 m square grids placed near the real
streets, in WGS-84. Everything is deterministic, so the same point lands in the same grid on
every machine.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import shapely
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.auth.models import Role, RoleGrant, User
from backend.cases.models import CaseKind, Category
from backend.core.clock import LOCAL_TIME, now
from backend.core.ids import new_id
from backend.mediation.models import Mediator, Specialty, Studio
from backend.regions.models import Region, RegionLevel
from points.models import PointsEarningRule, Reward, RewardStock, ServiceCenter
from volunteers.attendance import codes
from volunteers.models import (
    Activity,
    ActivityState,
    ActivityType,
    Team,
    TeamMember,
    Volunteer,
    VolunteerState,
)

CITY_CODE = "gz"
GRID_ROWS = 3
GRID_COLUMNS = 3
# ~300 m at 23.1° N: one degree of latitude is ~110.7 km, of longitude ~102.4 km.
GRID_DLAT = 0.0027
GRID_DLNG = 0.0029
_DECIMALS = 7


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


def _edge(origin: float, step: float, index: int) -> float:
    # Neighbours compute a shared edge from the same (origin, index): identical floats, no gap.
    return round(origin + index * step, _DECIMALS)


def grid_cells(south: float, west: float) -> list[tuple[str, dict[str, Any]]]:
    """A community's grids, `g01` in the south-west corner, row by row to `g09` north-east."""
    cells: list[tuple[str, dict[str, Any]]] = []
    for row in range(GRID_ROWS):
        for column in range(GRID_COLUMNS):
            number = row * GRID_COLUMNS + column + 1
            ring = _ring(
                _edge(south, GRID_DLAT, row),
                _edge(west, GRID_DLNG, column),
                _edge(south, GRID_DLAT, row + 1),
                _edge(west, GRID_DLNG, column + 1),
            )
            cells.append((f"g{number:02d}", {"type": "Polygon", "coordinates": [ring]}))
    return cells


def _union(geometries: list[dict[str, Any]]) -> dict[str, Any]:
    merged = shapely.union_all([shapely.geometry.shape(g) for g in geometries])
    # Collinear vertices left where squares met add nothing; drop them. Exterior rings
    # counter-clockwise, as RFC 7946 recommends.
    merged = shapely.orient_polygons(shapely.simplify(merged, 0), exterior_cw=False)
    return dict(shapely.geometry.mapping(merged))


def _geojson(geometry: dict[str, Any]) -> dict[str, Any]:
    """Plain lists (mapping() gives tuples) so the stored JSON is what a client would send."""
    return {
        "type": geometry["type"],
        "coordinates": _lists(geometry["coordinates"]),
    }


def _lists(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_lists(item) for item in value]
    return value


@dataclass(frozen=True)
class DemoCategory:
    kind: CaseKind
    code: str
    name: str
    name_en: str
    response_hours: int
    resolution_hours: int
    handling_unit: str
    handling_unit_en: str


_POLICE = ("派出所", "Police station")
_URBAN_SQUAD = ("城管中队", "Urban management squad")
_ENFORCEMENT = ("街道综合执法队", "Subdistrict law-enforcement team")
_MEDIATION_COMMITTEE = ("人民调解委员会", "People's mediation committee")

DEMO_CATEGORIES: tuple[DemoCategory, ...] = (
    DemoCategory(
        CaseKind.report, "public_security", "治安隐患", "Public-security hazard", 2, 24, *_POLICE
    ),
    DemoCategory(
        CaseKind.report,
        "fire_hazard",
        "消防隐患",
        "Fire hazard",
        2,
        24,
        "消防救援站",
        "Fire and rescue station",
    ),
    DemoCategory(
        CaseKind.report,
        "sanitation",
        "环境卫生",
        "Sanitation",
        4,
        48,
        "环卫站",
        "Sanitation station",
    ),
    DemoCategory(
        CaseKind.report,
        "road_facilities",
        "道路设施",
        "Road facilities (e.g. broken manhole cover)",
        4,
        72,
        "住建局道路养护所",
        "Road maintenance office",
    ),
    DemoCategory(
        CaseKind.report,
        "illegal_construction",
        "违章搭建",
        "Illegal construction",
        8,
        168,
        *_ENFORCEMENT,
    ),
    DemoCategory(CaseKind.report, "noise", "噪音扰民", "Noise nuisance", 2, 48, *_ENFORCEMENT),
    DemoCategory(
        CaseKind.report, "street_vending", "占道经营", "Street vending", 4, 48, *_URBAN_SQUAD
    ),
    DemoCategory(
        CaseKind.report,
        "municipal_facilities",
        "市政设施",
        "Municipal facilities (street lights, drains)",
        8,
        120,
        "市政设施养护所",
        "Municipal facilities maintenance office",
    ),
    DemoCategory(
        CaseKind.complaint,
        "property_management",
        "物业服务",
        "Property management",
        24,
        168,
        "住建局物业监管科",
        "Property supervision section",
    ),
    DemoCategory(
        CaseKind.complaint,
        "consumer_rights",
        "市场监管",
        "Consumer rights",
        24,
        168,
        "市场监督管理所",
        "Market supervision office",
    ),
    DemoCategory(
        CaseKind.complaint,
        "wages",
        "劳动保障",
        "Unpaid wages",
        24,
        120,
        "劳动保障监察大队",
        "Labour inspection brigade",
    ),
    DemoCategory(
        CaseKind.complaint,
        "urban_management",
        "城市管理",
        "Urban management",
        12,
        120,
        *_URBAN_SQUAD,
    ),
    # Mediation: the category is the dispute type; 30 days to settle, 3 to consent.
    *(
        DemoCategory(CaseKind.mediation, code, name, name_en, 72, 720, *_MEDIATION_COMMITTEE)
        for code, name, name_en in (
            ("neighbours", "邻里纠纷", "Neighbours"),
            ("family", "婚姻家庭纠纷", "Family"),
            ("labour_wages", "劳动争议与欠薪", "Labour and unpaid wages"),
            ("property_management", "物业纠纷", "Property management"),
            ("landlord_tenant", "房屋租赁纠纷", "Landlord and tenant"),
            ("consumer", "消费纠纷", "Consumer"),
            ("other", "其他民间纠纷", "Other civil disputes"),
        )
    ),
)


async def load_demo_categories(session: AsyncSession) -> None:
    """Add the demo categories that are missing; ones already there (maybe edited) stay."""
    rows = [
        {
            "id": new_id(),
            "kind": category.kind.value,
            "code": category.code,
            "name": category.name,
            "name_en": category.name_en,
            "response_hours": category.response_hours,
            "resolution_hours": category.resolution_hours,
            "handling_unit": category.handling_unit,
            "handling_unit_en": category.handling_unit_en,
            "position": 10 * (index + 1),
            "active": True,
        }
        for index, category in enumerate(DEMO_CATEGORIES)
    ]
    await session.execute(
        insert(Category).values(rows).on_conflict_do_nothing(index_elements=["kind", "code"])
    )


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
                west = _edge(street.west, GRID_DLNG, position * GRID_COLUMNS)
                cells = grid_cells(street.south, west)
                boundary = _geojson(_union([geometry for _, geometry in cells]))
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
            street_region.boundary = _geojson(_union(community_boundaries))
    session.add_all(regions.values())
    await session.flush()

    users = await _ensure_users(session)
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


async def _ensure_users(session: AsyncSession) -> dict[str, uuid.UUID]:
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
_DEMO_NAMESPACE = uuid.UUID("0193a1f2-0000-7000-8000-00000000d3e0")


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
        west = _edge(center.street_west, GRID_DLNG, center.position * GRID_COLUMNS)
        center_rows.append(
            {
                "id": uuid.uuid5(_DEMO_NAMESPACE, f"center:{center.code}"),
                "code": center.code,
                "name": center.name,
                "name_en": center.name_en,
                "region_id": regions[center.community],
                "region_path": center.community,
                # The middle of the community's block of grids.
                "lat": round(center.street_south + GRID_ROWS * GRID_DLAT / 2, _DECIMALS),
                "lng": round(west + GRID_COLUMNS * GRID_DLNG / 2, _DECIMALS),
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
            "id": uuid.uuid5(_DEMO_NAMESPACE, f"reward:{reward.key}"),
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


# --- volunteers --------------------------------------------------------------------------

# Points per activity type (the ledger's earning rules), at most 30 a day per member each.
DEMO_EARNING_RULES: dict[ActivityType, int] = {
    ActivityType.public_security_patrol: 10,
    ActivityType.rental_inspection: 15,
    ActivityType.fire_safety_check: 15,
    ActivityType.community_service: 8,
    ActivityType.civilised_traffic: 5,
    ActivityType.elderly_care: 5,
}
DEMO_DAILY_CAP = 30
DEMO_VOLUNTEER = "demo-resident"
DEMO_TEAM = "岗顶平安巡逻队"
_GANGDING_CENTER = DEMO_CENTERS[0]


def _tonight(at: datetime) -> datetime:
    """20:00 China time today, or the next full hour when that has passed."""
    local = at.astimezone(LOCAL_TIME)
    evening = local.replace(hour=20, minute=0, second=0, microsecond=0)
    if local < evening:
        return evening
    return local.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


async def load_demo_volunteers(session: AsyncSession) -> None:
    """The earning rules, `demo-resident` as an approved volunteer of Gangding leading its
    patrol team, and two published activities there (a patrol tonight and a rental-house
    inspection tomorrow, fenced around the community's service center). What is already
    there (maybe edited) stays as it is."""
    await session.execute(
        insert(PointsEarningRule)
        .values(
            [
                {
                    "id": new_id(),
                    "activity_type": activity_type.value,
                    "points": points,
                    "daily_cap": DEMO_DAILY_CAP,
                    "active": True,
                }
                for activity_type, points in DEMO_EARNING_RULES.items()
            ]
        )
        .on_conflict_do_nothing(index_elements=["activity_type"])
    )
    found = await session.execute(
        select(Region).where(col(Region.path) == _GANGDING_CENTER.community)
    )
    gangding = found.scalar_one_or_none()
    if gangding is None:
        return  # not the demo city
    users = await _ensure_users(session)
    staff = users["demo-community-staff"]
    at = now()
    registered = await session.execute(
        select(col(Volunteer.id)).where(col(Volunteer.user_id) == users[DEMO_VOLUNTEER])
    )
    if registered.first() is None:
        serial = (await session.execute(text("SELECT nextval('volunteer_number_seq')"))).scalar()
        session.add(
            Volunteer(
                id=new_id(),
                user_id=users[DEMO_VOLUNTEER],
                number=f"V{at.astimezone(LOCAL_TIME).year}-{serial:07d}",
                real_name="陈明",
                skills=["patrol", "first_aid"],
                availability={
                    "weekday_daytime": False,
                    "weekday_evening": True,
                    "weekend": True,
                    "note": None,
                },
                community_id=gangding.id,
                community_path=gangding.path,
                state=VolunteerState.approved,
                reviewed_by=staff,
                reviewed_at=at,
                created_at=at,
            )
        )
        await session.flush()
    # Whoever signed up as demo-resident before the demo loaded leads only once approved.
    leader = (
        await session.execute(
            select(col(Volunteer.id)).where(
                col(Volunteer.user_id) == users[DEMO_VOLUNTEER],
                col(Volunteer.state) == VolunteerState.approved.value,
            )
        )
    ).scalar_one_or_none()
    await session.execute(
        insert(Team)
        .values(
            id=new_id(),
            community_id=gangding.id,
            community_path=gangding.path,
            name=DEMO_TEAM,
            description="群防群治治安巡逻队，每晚 8 点在社区服务中心集合",
            leader_id=leader,
            active=True,
            created_by=staff,
            created_at=at,
        )
        # The team's name is unique in its community: once there, it stays as it is.
        .on_conflict_do_nothing()
    )
    team = (
        await session.execute(
            select(col(Team.id)).where(
                col(Team.community_id) == gangding.id, col(Team.name) == DEMO_TEAM
            )
        )
    ).scalar_one()
    if leader is not None:
        await session.execute(
            insert(TeamMember)
            .values(team_id=team, volunteer_id=leader, joined_at=at)
            .on_conflict_do_nothing()
        )
    west = _edge(_GANGDING_CENTER.street_west, GRID_DLNG, _GANGDING_CENTER.position * GRID_COLUMNS)
    centre = {
        "lat": round(_GANGDING_CENTER.street_south + GRID_ROWS * GRID_DLAT / 2, _DECIMALS),
        "lng": round(west + GRID_COLUMNS * GRID_DLNG / 2, _DECIMALS),
    }
    tonight = _tonight(at)
    tomorrow = (at.astimezone(LOCAL_TIME) + timedelta(days=1)).replace(
        hour=9, minute=30, second=0, microsecond=0
    )
    activities: list[tuple[str, dict[str, Any]]] = [
        (
            "activity:gangding-patrol",
            {
                "type": ActivityType.public_security_patrol.value,
                "title": "岗顶社区夜间治安巡逻",
                "description": "沿天河路、岗顶路巡逻，留意消防通道和可疑情况，发现隐患随手拍上报。",
                "starts_at": tonight,
                "ends_at": tonight + timedelta(hours=2),
                "capacity": 10,
            },
        ),
        (
            "activity:gangding-rental-inspection",
            {
                "type": ActivityType.rental_inspection.value,
                "title": "岗顶社区出租屋安全巡查",
                "description": "逐户检查灭火器、逃生通道、电线和租客登记，不合格项即时上报。",
                "starts_at": tomorrow,
                "ends_at": tomorrow + timedelta(hours=2),
                "capacity": 6,
            },
        ),
    ]
    await session.execute(
        insert(Activity)
        .values(
            [
                {
                    "id": uuid.uuid5(_DEMO_NAMESPACE, key),
                    **activity,
                    "region_id": gangding.id,
                    "region_path": gangding.path,
                    "team_id": None,
                    "place_name": _GANGDING_CENTER.name,
                    "address": _GANGDING_CENTER.address,
                    **centre,
                    "fence_radius_m": 300,
                    "enrolled": 0,
                    "waitlisted": 0,
                    "state": ActivityState.published.value,
                    "code_secret": codes.new_secret(),
                    "created_by": staff,
                    "created_at": at,
                    "published_at": at,
                }
                for key, activity in activities
            ]
        )
        .on_conflict_do_nothing(index_elements=["id"])
    )


# --- the mediation supermarket -------------------------------------------------------------

DEMO_STUDIO_NAME = "石牌街和事佬调解工作室"
DEMO_MEDIATOR = "demo-mediator"


async def load_demo_mediation(session: AsyncSession) -> None:
    """A studio of the mediation supermarket for Shipai subdistrict (neighbourhood, family
    and property disputes) with `demo-mediator` as its mediator, so a demo mediation request
    there finds a mediator. What is already there (maybe edited) stays as it is."""
    found = await session.execute(select(Region).where(col(Region.path) == STAFF_STREET))
    shipai = found.scalar_one_or_none()
    if shipai is None:
        return  # not the demo city
    users = await _ensure_users(session)
    at = now()
    await session.execute(
        insert(Studio)
        .values(
            id=uuid.uuid5(_DEMO_NAMESPACE, "studio:shipai-peacemakers"),
            name=DEMO_STUDIO_NAME,
            name_en="Shipai Peacemakers Mediation Studio",
            description="石牌街人民调解委员会设立的“和事佬”工作室，由熟悉街坊的老调解员坐班，"
            "擅长邻里、婚姻家庭和物业纠纷。",
            specialties=[
                s.value for s in (Specialty.neighbourhood, Specialty.family, Specialty.property)
            ],
            region_id=shipai.id,
            region_path=shipai.path,
            active=True,
            created_at=at,
        )
        # The name is unique in its area: once there, it stays as it is.
        .on_conflict_do_nothing()
    )
    studio = (
        await session.execute(
            select(col(Studio.id)).where(
                col(Studio.region_id) == shipai.id, col(Studio.name) == DEMO_STUDIO_NAME
            )
        )
    ).scalar_one()
    await session.execute(
        insert(Mediator)
        .values(
            id=uuid.uuid5(_DEMO_NAMESPACE, "mediator:demo-mediator"),
            user_id=users[DEMO_MEDIATOR],
            studio_id=studio,
            display_name="周叔",
            title="人民调解员",
            specialties=[
                s.value
                for s in (
                    Specialty.neighbourhood,
                    Specialty.family,
                    Specialty.property,
                    Specialty.labour,
                )
            ],
            region_id=shipai.id,
            region_path=shipai.path,
            max_active=20,
            active=True,
            created_at=at,
        )
        # One entry per user: a demo mediator registered (or edited) before stays as it is.
        .on_conflict_do_nothing()
    )
