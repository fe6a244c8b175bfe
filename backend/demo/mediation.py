"""The demo mediation supermarket: a studio and its mediator."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.core.clock import now
from backend.demo.city import STAFF_STREET, ensure_users
from backend.demo.rewards import DEMO_NAMESPACE
from backend.mediation.models import Mediator, Specialty, Studio
from backend.regions.models import Region

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
    users = await ensure_users(session)
    at = now()
    await session.execute(
        insert(Studio)
        .values(
            id=uuid.uuid5(DEMO_NAMESPACE, "studio:shipai-peacemakers"),
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
            id=uuid.uuid5(DEMO_NAMESPACE, "mediator:demo-mediator"),
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
