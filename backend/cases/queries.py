"""The read model of a case: what residents and staff see of it, and the lists."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.auth.models import Role, User
from backend.auth.principal import Principal, region_scope
from backend.cases import schemas, workflow
from backend.cases.errors import (
    CaseNotFound,
)
from backend.cases.models import (
    Case,
    CaseAttachment,
    CaseEvent,
    CaseKind,
    CaseState,
    Category,
)
from backend.core.pagination import keyset
from backend.regions.models import Region
from backend.regions.schemas import PointOut, RegionBrief
from backend.storage import service as storage_service
from backend.storage.models import Upload
from backend.storage.service import ObjectStore

# Staff who see the cases in their regions (mediators see mediation cases, elsewhere).
CASE_STAFF_ROLES = (Role.grid_worker, Role.community_staff, Role.department_handler, Role.admin)

# --- The read model ----------------------------------------------------------------------


def _summary(description: str) -> str:
    return description[: schemas.SUMMARY_CHARS]


def _category_brief(category: Category) -> schemas.CategoryBrief:
    return schemas.CategoryBrief(
        id=category.id,
        code=category.code,
        name=category.name,
        name_en=category.name_en,
        handling_unit=category.handling_unit,
        handling_unit_en=category.handling_unit_en,
    )


def _is_staff_role(role: str) -> bool:
    return role not in (workflow.RESIDENT, workflow.SYSTEM)


def reporter_is(case: Case, viewer: Principal) -> bool:
    return case.reporter_id is not None and case.reporter_id == viewer.user_id


def reporter_shown(case: Case, viewer: Principal) -> bool:
    """May `viewer` learn who reported `case`?

    The reporter may, and staff may when the resident submitted the case themself, not
    anonymously. A case staff registered for a resident who phoned is linked to the account
    that bound the number, so the resident follows it; but whoever sees it besides them
    learns neither whose account that is nor whether there is one: only the number typed,
    masked, as the contact.
    """
    if reporter_is(case, viewer):
        return True
    return (
        case.reporter_id is not None
        and case.submitted_by == case.reporter_id
        and not case.anonymous
    )


def case_fields(
    case: Case,
    *,
    store: ObjectStore,
    viewer: Principal,
    category: Category,
    regions: dict[str, RegionBrief],
    events: Sequence[tuple[CaseEvent, str | None]],
    attachments: Sequence[tuple[int | None, Upload]],
    reporter: User | None,
) -> dict[str, Any]:
    """Everything `CaseOut` shows, as the viewer may see it.

    A resident's identity is shown to the resident themself, and to staff only when the
    resident submitted the case and not anonymously; in the timeline, only staff are named.
    `reporter` is None where the viewer may not see them (`reporter_shown`).
    """
    is_reporter = reporter_is(case, viewer)
    reporter_out = None
    if reporter is not None and reporter_shown(case, viewer):
        reporter_out = schemas.ReporterOut(
            id=reporter.id, nickname=reporter.nickname, phone=reporter.phone_masked
        )
    contact_phone = None
    if is_reporter or not case.anonymous:
        contact_phone = case.contact_phone_masked or (
            reporter_out.phone if reporter_out is not None else None
        )

    def region(path: str) -> RegionBrief:
        return regions.get(path) or RegionBrief(code=path, name=path)

    return {
        "id": case.id,
        "number": case.number,
        "kind": case.kind,
        "state": case.state,
        "version": case.version,
        "category": _category_brief(category),
        "description": case.description,
        "location": PointOut(lat=case.lat, lng=case.lng),
        "address": case.address,
        "grid": region(case.location_path),
        "queue": region(case.queue_path),
        "channel": case.channel,
        "anonymous": case.anonymous,
        "reporter": reporter_out,
        "contact_phone": contact_phone,
        "target": (
            schemas.TargetOut(type=case.target_type, name=case.target_name)
            if case.target_type is not None and case.target_name is not None
            else None
        ),
        "priority": case.priority,
        "escalation_level": case.escalation_level,
        "assignee_id": case.assignee_id,
        "supporters": case.supporters,
        "response_due_at": case.response_due_at,
        "resolution_due_at": case.resolution_due_at,
        "accepted_at": case.accepted_at,
        "resolved_at": case.resolved_at,
        "closed_at": case.closed_at,
        "rejected_reason": case.rejected_reason,
        "rating": case.rating,
        "rating_comment": case.rating_comment,
        "reopen_count": case.reopen_count,
        "created_at": case.created_at,
        "updated_at": case.updated_at,
        "attachments": [
            schemas.AttachmentOut(
                id=upload.id,
                url=storage_service.view_url(store, upload),
                content_type=upload.content_type,
                event_seq=seq,
            )
            for seq, upload in attachments
        ],
        "timeline": [
            schemas.CaseEventOut(
                seq=event.seq,
                action=event.action,
                from_state=event.from_state,
                to_state=event.to_state,
                note=event.note,
                actor_role=event.actor_role,
                actor=(
                    schemas.PersonOut(id=event.actor_id, nickname=nickname)
                    if event.actor_id is not None and _is_staff_role(event.actor_role)
                    else None
                ),
                data=event.data,
                created_at=event.created_at,
            )
            for event, nickname in events
        ],
    }


async def view_fields(
    session: AsyncSession, store: ObjectStore, case: Case, *, viewer: Principal
) -> dict[str, Any]:
    category = await session.get(Category, case.category_id)
    assert category is not None  # a foreign key
    region_rows = await session.execute(
        select(col(Region.path), col(Region.name), col(Region.name_en)).where(
            col(Region.path).in_({case.location_path, case.queue_path})
        )
    )
    regions = {
        path: RegionBrief(code=path, name=name, name_en=name_en)
        for path, name, name_en in region_rows.all()
    }
    event_rows = await session.execute(
        select(CaseEvent, col(User.nickname))
        .outerjoin(User, col(User.id) == col(CaseEvent.actor_id))
        .where(col(CaseEvent.case_id) == case.id)
        .order_by(col(CaseEvent.seq))
    )
    events: list[tuple[CaseEvent, str | None]] = [(e, n) for e, n in event_rows.all()]
    seq_of = {event.id: event.seq for event, _ in events}
    attachment_rows = await session.execute(
        select(col(CaseAttachment.event_id), Upload)
        .join(Upload, col(Upload.id) == col(CaseAttachment.upload_id))
        .where(col(CaseAttachment.case_id) == case.id)
        .order_by(col(CaseAttachment.event_id).nulls_last(), col(CaseAttachment.position))
    )
    attachments = [
        (seq_of.get(event_id) if event_id else None, upload)
        for event_id, upload in attachment_rows.all()
    ]
    reporter: User | None = None
    if reporter_is(case, viewer):
        reporter = viewer.user
    elif case.reporter_id is not None and reporter_shown(case, viewer):
        reporter = await session.get(User, case.reporter_id)
    return case_fields(
        case,
        store=store,
        viewer=viewer,
        category=category,
        regions=regions,
        events=events,
        attachments=attachments,
        reporter=reporter,
    )


async def case_view(
    session: AsyncSession, store: ObjectStore, case: Case, *, viewer: Principal
) -> schemas.CaseOut:
    """The case as `viewer` may see it: its reporter, or staff whose regions cover it.

    The caller has already checked that the viewer may see the case at all.
    """
    return schemas.CaseOut(**await view_fields(session, store, case, viewer=viewer))


# --- Reading -----------------------------------------------------------------------------


def visible_to(principal: Principal) -> Any:
    """SQL condition: the case is the caller's own, or in a region they handle cases in."""
    return or_(
        col(Case.reporter_id) == principal.user_id,
        region_scope(col(Case.location_path), principal, CASE_STAFF_ROLES),
        region_scope(col(Case.queue_path), principal, CASE_STAFF_ROLES),
    )


async def visible_case(session: AsyncSession, principal: Principal, case_id: uuid.UUID) -> Case:
    """The report or complaint if the caller may see it, else 404 (existence never leaks)."""
    result = await session.execute(
        select(Case).where(
            col(Case.id) == case_id,
            col(Case.kind) != CaseKind.mediation,
            visible_to(principal),
        )
    )
    case = result.scalar_one_or_none()
    if case is None:
        raise CaseNotFound()
    return case


async def my_cases(
    session: AsyncSession,
    principal: Principal,
    *,
    state: CaseState | None,
    after: uuid.UUID | None,
    limit: int,
) -> list[schemas.CaseListItem]:
    """The caller's reports and complaints, newest first (ids are time-ordered)."""
    query = (
        select(Case, Category)
        .join(Category, col(Category.id) == col(Case.category_id))
        .where(
            col(Case.reporter_id) == principal.user_id,
            col(Case.kind) != CaseKind.mediation,
        )
        .limit(limit)
    )
    if state is not None:
        query = query.where(col(Case.state) == state)
    query = keyset(query, col(Case.id), after)
    return [list_item(case, category) for case, category in (await session.execute(query)).all()]


def list_item(case: Case, category: Category) -> schemas.CaseListItem:
    return schemas.CaseListItem(
        id=case.id,
        number=case.number,
        kind=case.kind,
        state=case.state,
        category=_category_brief(category),
        summary=_summary(case.description),
        address=case.address,
        supporters=case.supporters,
        rating=case.rating,
        response_due_at=case.response_due_at,
        resolution_due_at=case.resolution_due_at,
        created_at=case.created_at,
        updated_at=case.updated_at,
    )
