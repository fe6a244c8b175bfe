"""Factories shared by the tests."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from backend.auth.models import Role, RoleGrant, User
from backend.cases import workflow
from backend.cases.models import (
    Case,
    CaseKind,
    CaseState,
    Category,
    Channel,
)
from backend.cases.workflow import Actor
from backend.core.database import create_sessionmaker
from backend.regions.models import Region, RegionLevel

GANGDING = "gz.tianhe.shipai.gangding"


SHIPAI = "gz.tianhe.shipai"


G05 = f"{GANGDING}.g05"


# Demo geometry (backend/demo/city.py): Gangding's 3x3 grids start at 23.1300 N, 113.3250 E,
# 0.0027 deg of latitude by 0.0029 deg of longitude each; g01 is the south-west one.
SOUTH, WEST, DLAT, DLNG = 23.1300, 113.3250, 0.0027, 0.0029


def gangding_point(grid: int) -> tuple[float, float]:
    """The middle of Gangding's grid `grid` (1..9), WGS-84."""
    row, column = divmod(grid - 1, 3)
    return SOUTH + (row + 0.5) * DLAT, WEST + (column + 0.5) * DLNG


async def make_category(
    session: AsyncSession,
    kind: CaseKind = CaseKind.report,
    *,
    response_hours: int = 4,
    resolution_hours: int = 72,
) -> Category:
    category = Category(
        kind=kind,
        code=f"t_{secrets.token_hex(4)}",
        name="测试类别",
        name_en="Test category",
        response_hours=response_hours,
        resolution_hours=resolution_hours,
        handling_unit="城管中队",
        handling_unit_en="Urban management squad",
    )
    session.add(category)
    await session.flush()
    return category


async def make_user(session: AsyncSession, nickname: str = "居民") -> User:
    user = User(openid=f"wb-{secrets.token_hex(6)}", nickname=nickname)
    session.add(user)
    await session.flush()
    return user


async def open_case(
    session: AsyncSession,
    category: Category,
    *,
    grid: str = G05,
    reporter: User | None = None,
    description: str = "岗顶路口的井盖松动，电动车经过时响声很大",
    channel: Channel = Channel.miniapp,
    commit: bool = True,
) -> Case:
    """A submitted case, opened the way a resident's submission opens it."""
    region = (await session.execute(select(Region).where(Region.path == grid))).scalar_one()  # type: ignore[arg-type]
    if reporter is None:
        reporter = await make_user(session)
    case, _ = await workflow.open_case(
        session,
        kind=CaseKind(category.kind),
        category=category,
        description=description,
        lat=23.13,
        lng=113.33,
        address=None,
        grid_id=region.id,
        grid_path=grid,
        queue_path=workflow.community_of(grid),
        submitted_by=reporter.id,
        reporter_id=reporter.id,
        actor=Actor(reporter.id, workflow.RESIDENT),
        idempotency_key=secrets.token_hex(8),
        request_hash="0" * 64,
        channel=channel,
    )
    if commit:
        await session.commit()
    return case


async def set_state(session: AsyncSession, case: Case, state: CaseState) -> None:
    """Put a case straight into `state` (a factory shortcut, not a transition)."""
    await session.execute(
        update(Case).where(Case.id == case.id).values(state=state.value)  # type: ignore[arg-type]
    )
    await session.commit()
    await session.refresh(case)


async def reload(session: AsyncSession, case: Case) -> Case:
    await session.refresh(case)
    return case


@dataclass
class World:
    """Committed rows (on separate connections) under codes and openids of their own."""

    city: str
    community: str
    grid: str
    grid_id: uuid.UUID
    staff: User
    resident: User
    category: Category


async def committed_world(engine: AsyncEngine, *, response_hours: int = 4) -> World:
    """A one-grid city, a community staff member and a category, committed for real."""
    city = f"zt{secrets.token_hex(4)}"
    community = f"{city}.d.s.c"
    grid = f"{community}.g1"
    async with create_sessionmaker(engine)() as session:
        parent_id = None
        for path, level in zip(
            (city, f"{city}.d", f"{city}.d.s", community, grid),
            RegionLevel,
            strict=True,
        ):
            region = Region(path=path, level=level, name=path, parent_id=parent_id)
            session.add(region)
            await session.flush()
            parent_id = region.id
        staff = User(openid=f"wb-staff-{secrets.token_hex(6)}", nickname="并发测试员")
        resident = User(openid=f"wb-res-{secrets.token_hex(6)}", nickname="并发居民")
        session.add_all([staff, resident])
        category = Category(
            kind=CaseKind.report,
            code=f"t_{secrets.token_hex(4)}",
            name="并发",
            name_en="Concurrency",
            response_hours=response_hours,
            resolution_hours=response_hours * 10,
            handling_unit="城管",
            handling_unit_en="Urban",
            # Committed for real: kept out of the public catalogue the other tests read.
            active=False,
        )
        session.add(category)
        await session.flush()
        community_id = (
            await session.execute(select(Region.id).where(Region.path == community))  # type: ignore[arg-type]
        ).scalar_one()
        session.add(
            RoleGrant(
                user_id=staff.id,
                role=Role.community_staff,
                region_id=community_id,
                region_path=community,
            )
        )
        await session.commit()
    return World(city, community, grid, parent_id, staff, resident, category)  # type: ignore[arg-type]


async def committed_case(engine: AsyncEngine, world: World) -> Case:
    async with create_sessionmaker(engine)() as session:
        case, _ = await workflow.open_case(
            session,
            kind=CaseKind.report,
            category=world.category,
            description="并发测试事项",
            lat=0.0,
            lng=0.0,
            address=None,
            grid_id=world.grid_id,
            grid_path=world.grid,
            queue_path=world.community,
            submitted_by=world.resident.id,
            reporter_id=world.resident.id,
            actor=Actor(world.resident.id, workflow.RESIDENT),
            idempotency_key=secrets.token_hex(8),
            request_hash="0" * 64,
        )
        await session.commit()
    return case
