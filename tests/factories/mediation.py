"""Small async factories for the mediation tests: rows in explicit states, never at random.

They write through the test's session (inside its rolled-back transaction); the demo city
(with its mediation categories) must be loaded first (the `demo` fixture). Anything a test
is about goes through HTTP.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.auth.models import Role, RoleGrant
from backend.cases import workflow
from backend.cases.models import Case, CaseKind, Category
from backend.core.clock import now
from backend.core.ids import new_id
from backend.core.security import PersonalData, mask_phone
from backend.mediation.models import (
    Consent,
    DisputeType,
    Mediation,
    MediationParty,
    MediationState,
    Mediator,
    PartyRole,
    Studio,
)
from backend.mediation.supermarket.assignment import assign
from tests.factories.volunteers import centre_of, region_of, user_id_of

SHIPAI = "gz.tianhe.shipai"  # the demo mediator's street
GANGDING_GRID = "gz.tianhe.shipai.gangding.g05"  # a grid in it
ELSEWHERE_STREET = "gz.yuexiu.beijing"  # a street of another district


async def make_studio(
    session: AsyncSession,
    name: str,
    *,
    region: str = SHIPAI,
    specialties: tuple[str, ...] = ("neighbourhood", "family", "property"),
    active: bool = True,
) -> Studio:
    area = await region_of(session, region)
    studio = Studio(
        name=name,
        specialties=list(specialties),
        region_id=area.id,
        region_path=area.path,
        active=active,
    )
    session.add(studio)
    await session.flush()
    return studio


async def make_mediator(
    session: AsyncSession,
    openid: str,
    *,
    region: str = SHIPAI,
    specialties: tuple[str, ...] = ("neighbourhood", "family", "property"),
    studio: Studio | None = None,
    max_active: int = 20,
    name: str = "调解员",
) -> Mediator:
    """A mediator in the supermarket, holding the `mediator` role on their area."""
    user_id = await user_id_of(session, openid)
    area = await region_of(session, region)
    session.add(
        RoleGrant(
            id=new_id(),
            user_id=user_id,
            role=Role.mediator,
            region_id=area.id,
            region_path=area.path,
        )
    )
    mediator = Mediator(
        user_id=user_id,
        studio_id=studio.id if studio else None,
        display_name=name,
        specialties=list(specialties),
        region_id=area.id,
        region_path=area.path,
        max_active=max_active,
    )
    session.add(mediator)
    await session.flush()
    return mediator


async def make_mediation(
    session: AsyncSession,
    personal_data: PersonalData,
    applicant: str,
    *,
    dispute_type: DisputeType = DisputeType.neighbours,
    grid: str = GANGDING_GRID,
    respondents: tuple[tuple[str, str, str | None, Consent], ...] = (
        ("李四", "13912345678", None, Consent.pending),
    ),
    state: MediationState = MediationState.awaiting_consent,
    mediator: Mediator | None = None,
    description: str = "楼上邻居装修噪音扰民，多次沟通无果",
    claim: str = "请求对方在晚上十点后停止施工",
) -> Mediation:
    """A mediation case with its parties. `respondents`: (name, phone, openid of the user
    who accepted the invitation or None, consent). With `mediator`, it is assigned."""
    applicant_id = await user_id_of(session, applicant)
    category = (
        await session.execute(
            select(Category).where(
                col(Category.kind) == CaseKind.mediation.value,
                col(Category.code) == DisputeType(dispute_type).value,
            )
        )
    ).scalar_one()
    place = await region_of(session, grid)
    lat, lng = await centre_of(session, grid)
    opened = await workflow.open_case(
        session,
        kind=CaseKind.mediation,
        category=category,
        description=description,
        lat=lat,
        lng=lng,
        address=None,
        grid_id=place.id,
        grid_path=place.path,
        queue_path=workflow.community_of(place.path),
        submitted_by=applicant_id,
        reporter_id=applicant_id,
        actor=workflow.Actor(applicant_id, workflow.RESIDENT),
        idempotency_key=f"factory-{uuid.uuid4().hex}",
        request_hash="factory",
    )
    assert opened is not None
    case: Case = opened[0]
    at = now()
    mediation = Mediation(
        case_id=case.id,
        dispute_type=dispute_type,
        claim=claim,
        state=MediationState.awaiting_consent,
        applicant_id=applicant_id,
        region_path=place.path,
        consent_due_at=at + timedelta(hours=72),
        due_at=at + timedelta(days=30),
    )
    session.add(mediation)
    await session.flush()
    session.add(
        MediationParty(
            case_id=case.id,
            role=PartyRole.applicant,
            user_id=applicant_id,
            name="申请人",
            consent=Consent.accepted,
            consent_at=at,
        )
    )
    for name, phone, openid, consent in respondents:
        session.add(
            MediationParty(
                case_id=case.id,
                role=PartyRole.respondent,
                user_id=await user_id_of(session, openid) if openid else None,
                name=name,
                phone_ciphertext=personal_data.encrypt(phone),
                phone_hash=personal_data.lookup_hash(phone),
                phone_masked=mask_phone(phone),
                invitation_hash=uuid.uuid4().hex,
                invited_at=at,
                consent=consent,
                consent_at=at if consent is not Consent.pending else None,
            )
        )
    await session.flush()
    if mediator is not None:
        await assign(
            session,
            mediation,
            case,
            mediator,
            actor=workflow.Actor(None, workflow.SYSTEM),
            at=at,
        )
    if state is not MediationState.awaiting_consent and mediation.state != state:
        mediation.state = state
        await session.flush()
    return mediation
