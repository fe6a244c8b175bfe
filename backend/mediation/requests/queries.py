"""The read model of a mediation: what each party, the mediator and admins above may see."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.auth.principal import Principal
from backend.cases import workflow
from backend.cases.models import Case, CaseAttachment, CaseEvent, Category
from backend.cases.schemas import AttachmentOut
from backend.core.pagination import keyset
from backend.mediation.auth import Seen, Viewer, visible_mediation
from backend.mediation.models import (
    Consent,
    Mediation,
    MediationParty,
    MediationState,
    Mediator,
    PartyRole,
    Studio,
)
from backend.mediation.proceedings.referrals import advice_for, route_out
from backend.mediation.requests import schemas
from backend.regions.models import Region
from backend.regions.schemas import RegionBrief
from backend.storage import service as storage_service
from backend.storage.models import Upload
from backend.storage.service import ObjectStore

# --- the read model ------------------------------------------------------------------------

# Timeline data never carries contact details or minutes by rule; ids of people and rows
# are left out too, as the roles say who acted.
_PRIVATE_KEYS = frozenset({"minutes", "phone", "attended"})


def _public_data(data: dict[str, Any]) -> dict[str, Any]:
    return {
        key: value
        for key, value in data.items()
        if isinstance(value, str | int | float | bool)
        and key not in _PRIVATE_KEYS
        and not key.endswith(("_id", "_ids"))
    }


async def regions_by_id(session: AsyncSession, paths: set[str]) -> dict[str, RegionBrief]:
    rows = await session.execute(
        select(col(Region.path), col(Region.name), col(Region.name_en)).where(
            col(Region.path).in_(paths)
        )
    )
    return {
        path: RegionBrief(code=path, name=name, name_en=name_en) for path, name, name_en in rows
    }


async def parties_of(session: AsyncSession, case_id: uuid.UUID) -> list[MediationParty]:
    rows = await session.execute(
        select(MediationParty)
        .where(col(MediationParty.case_id) == case_id)
        # 'applicant' sorts before 'respondent'; ids are time-ordered.
        .order_by(col(MediationParty.role), col(MediationParty.id))
        .execution_options(populate_existing=True)
    )
    return list(rows.scalars())


def _party_out(party: MediationParty, *, viewer: Viewer, user_id: uuid.UUID) -> schemas.PartyOut:
    mine = party.user_id is not None and party.user_id == user_id
    sees_every_phone = viewer in (Viewer.mediator, Viewer.supervisor)
    return schemas.PartyOut(
        id=party.id,
        role=party.role,
        name=party.name,
        consent=party.consent,
        consent_at=party.consent_at,
        decline_reason=party.decline_reason,
        phone=party.phone_masked if mine or sees_every_phone else None,
        confirmed_version=party.confirmed_version,
        is_you=mine,
    )


async def _timeline(
    session: AsyncSession, mediation: Mediation, parties: Sequence[MediationParty]
) -> list[schemas.TimelineEntryOut]:
    events = list(
        (
            await session.execute(
                select(CaseEvent)
                .where(col(CaseEvent.case_id) == mediation.case_id)
                .order_by(col(CaseEvent.seq))
            )
        ).scalars()
    )
    respondents = {p.user_id for p in parties if p.role == PartyRole.respondent and p.user_id}
    actors = {e.actor_id for e in events if e.actor_id is not None}
    mediators: set[uuid.UUID] = set()
    if actors:
        mediators = set(
            (
                await session.execute(
                    select(col(Mediator.user_id)).where(col(Mediator.user_id).in_(actors))
                )
            ).scalars()
        )

    def by(event: CaseEvent) -> str:
        if event.actor_role == workflow.SYSTEM or event.actor_id is None:
            return "system"
        if event.actor_id == mediation.applicant_id:
            return "applicant"
        if event.actor_id in respondents:
            return "respondent"
        if event.actor_id in mediators:
            return "mediator"
        return "supervisor"

    return [
        schemas.TimelineEntryOut(
            seq=event.seq,
            action=event.action,
            from_state=event.from_state,
            to_state=event.to_state,
            by=by(event),
            note=event.note,
            data=_public_data(event.data),
            at=event.created_at,
        )
        for event in events
    ]


async def _evidence(
    session: AsyncSession, store: ObjectStore, case_id: uuid.UUID
) -> list[AttachmentOut]:
    rows = await session.execute(
        select(col(CaseEvent.seq), Upload)
        .select_from(CaseAttachment)
        .join(Upload, col(Upload.id) == col(CaseAttachment.upload_id))
        .outerjoin(CaseEvent, col(CaseEvent.id) == col(CaseAttachment.event_id))
        .where(col(CaseAttachment.case_id) == case_id)
        .order_by(col(CaseEvent.seq).nulls_last(), col(CaseAttachment.position))
    )
    return [
        AttachmentOut(
            id=upload.id,
            url=storage_service.view_url(store, upload),
            content_type=upload.content_type,
            event_seq=seq,
        )
        for seq, upload in rows.all()
    ]


async def _mediator_out(
    session: AsyncSession, mediator_id: uuid.UUID | None
) -> schemas.AssignedMediator | None:
    if mediator_id is None:
        return None
    row = (
        await session.execute(
            select(Mediator, col(Studio.name))
            .outerjoin(Studio, col(Studio.id) == col(Mediator.studio_id))
            .where(col(Mediator.id) == mediator_id)
        )
    ).first()
    if row is None:
        return None
    mediator, studio_name = row
    return schemas.AssignedMediator(
        display_name=mediator.display_name, title=mediator.title, studio_name=studio_name
    )


async def view_fields(
    session: AsyncSession, store: ObjectStore, seen: Seen, user_id: uuid.UUID
) -> dict[str, Any]:
    mediation, case = seen.mediation, seen.case
    category = await session.get(Category, case.category_id)
    assert category is not None  # a foreign key
    community = workflow.community_of(mediation.region_path)
    regions = await regions_by_id(session, {community, mediation.region_path})
    parties = await parties_of(session, mediation.case_id)
    preferred = (
        await session.get(Studio, mediation.preferred_studio_id)
        if mediation.preferred_studio_id is not None
        else None
    )
    state = MediationState(mediation.state)
    return {
        "id": mediation.case_id,
        "number": case.number,
        "state": state,
        "viewer": seen.viewer,
        "dispute_type": mediation.dispute_type,
        "dispute_type_name": category.name,
        "dispute_type_name_en": category.name_en,
        "description": case.description,
        "claim": mediation.claim,
        "address": case.address,
        "place": regions.get(community) or RegionBrief(code=community, name=community),
        "grid": regions.get(mediation.region_path)
        or RegionBrief(code=mediation.region_path, name=mediation.region_path),
        "evidence": await _evidence(session, store, mediation.case_id),
        "parties": [_party_out(p, viewer=seen.viewer, user_id=user_id) for p in parties],
        "mediator": await _mediator_out(session, mediation.mediator_id),
        "preferred_studio_name": preferred.name if preferred is not None else None,
        "consent_due_at": mediation.consent_due_at,
        "due_at": mediation.due_at,
        "assigned_at": mediation.assigned_at,
        "escalated_at": mediation.escalated_at,
        "ended_at": mediation.ended_at,
        "agreement": (
            schemas.AgreementSummary(
                text=mediation.agreement_text,
                version=mediation.agreement_version,
                judicial_confirmation=mediation.judicial_confirmation,
            )
            if mediation.agreement_text is not None
            else None
        ),
        "referral": route_out(mediation.referral) if mediation.referral else None,
        "outcome_note": mediation.outcome_note,
        "advice": advice_for(mediation.dispute_type)
        if state is MediationState.not_mediated
        else [],
        "timeline": await _timeline(session, mediation, parties),
        "created_at": mediation.created_at,
        "updated_at": mediation.updated_at,
    }


async def mediation_view(
    session: AsyncSession, store: ObjectStore, seen: Seen, *, viewer: Principal
) -> schemas.MediationOut:
    """The mediation as the viewer may see it (the caller has checked they may see it)."""
    return schemas.MediationOut(**await view_fields(session, store, seen, viewer.user_id))


async def get_mediation(
    session: AsyncSession, store: ObjectStore, principal: Principal, case_id: uuid.UUID
) -> schemas.MediationOut:
    seen = await visible_mediation(session, principal, case_id)
    return await mediation_view(session, store, seen, viewer=principal)


async def my_mediations(
    session: AsyncSession,
    principal: Principal,
    *,
    state: MediationState | None,
    after: uuid.UUID | None,
    limit: int,
) -> list[schemas.MediationListItem]:
    """The caller's mediations as a party (applicant, or a respondent who accepted),
    newest first (case ids are time-ordered)."""
    query = (
        select(Mediation, Case, Category, col(MediationParty.role))
        .join(Case, col(Case.id) == col(Mediation.case_id))
        .join(Category, col(Category.id) == col(Case.category_id))
        .join(MediationParty, col(MediationParty.case_id) == col(Mediation.case_id))
        .where(
            col(MediationParty.user_id) == principal.user_id,
            col(MediationParty.consent) == Consent.accepted.value,
        )
        .limit(limit)
    )
    if state is not None:
        query = query.where(col(Mediation.state) == state.value)
    query = keyset(query, col(Mediation.case_id), after)
    return [
        schemas.MediationListItem(
            id=mediation.case_id,
            number=case.number,
            state=mediation.state,
            role=role,
            dispute_type=mediation.dispute_type,
            dispute_type_name=category.name,
            dispute_type_name_en=category.name_en,
            summary=case.description[: schemas.SUMMARY_CHARS],
            consent_due_at=mediation.consent_due_at,
            due_at=mediation.due_at,
            ended_at=mediation.ended_at,
            created_at=mediation.created_at,
            updated_at=mediation.updated_at,
        )
        for mediation, case, category, role in (await session.execute(query)).all()
    ]
