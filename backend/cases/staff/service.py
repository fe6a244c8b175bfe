"""The staff workbench: the case queue of an area, staff actions, and registration by phone.

Rules only (no HTTP). Every read is scoped in SQL to the caller's regions first, so a case
elsewhere is "not found"; what the caller may do with a case they can see is checked after.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Text,
    and_,
    case,
    cast,
    literal,
    or_,
    select,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from backend.auth.models import Role, RoleGrant, User
from backend.auth.principal import Principal, path_within, region_scope
from backend.cases import errors as cases_errors
from backend.cases import workflow
from backend.cases.categories import service as categories_service
from backend.cases.models import (
    Case,
    CaseAttachment,
    CaseKind,
    CaseState,
    Category,
    Channel,
)
from backend.cases.staff import errors
from backend.cases.staff.schemas import (
    CaseRegistration,
    CategoryRef,
    RejectReason,
    StaffAction,
    StaffActionBody,
    StaffCaseItem,
    UserRef,
)
from backend.core.clock import now
from backend.core.errors import Forbidden
from backend.core.idempotency import check_idempotency_key, earlier_request, request_hash
from backend.core.pagination import CursorInvalid
from backend.core.security import PersonalData, mask_phone
from backend.regions import service as regions_service
from backend.regions.coords import to_wgs84
from backend.regions.models import Region
from backend.regions.service import GridMap
from backend.storage import service as storage_service
from backend.storage.models import UploadPurpose
from backend.storage.service import ObjectStore

# Roles that work the report and complaint queues (admin counts for each, see Principal).
STAFF_ROLES: tuple[Role, ...] = (Role.grid_worker, Role.community_staff, Role.department_handler)


# Mediation cases have their own rules of visibility; the workbench handles the other two.
STAFF_KINDS = (CaseKind.report, CaseKind.complaint)


RESPONSE_STATES = (CaseState.submitted, CaseState.reopened)


RESOLUTION_STATES = (CaseState.accepted, CaseState.in_progress)


_EVERY_STAFF_ROLE = frozenset({*STAFF_ROLES, Role.admin})


# Grid workers handle cases on the ground; assigning and rejecting is for staff above them.
ACTION_ROLES: dict[StaffAction, frozenset[Role]] = {
    StaffAction.accept: _EVERY_STAFF_ROLE,
    StaffAction.start: _EVERY_STAFF_ROLE,
    StaffAction.resolve: _EVERY_STAFF_ROLE,
    StaffAction.comment: _EVERY_STAFF_ROLE,
    StaffAction.escalate: _EVERY_STAFF_ROLE,
    StaffAction.assign: _EVERY_STAFF_ROLE - {Role.grid_worker},
    StaffAction.reject: _EVERY_STAFF_ROLE - {Role.grid_worker},
}


# The role written on the timeline when the caller holds several that allow the action.
_ROLE_PREFERENCE = (Role.community_staff, Role.department_handler, Role.grid_worker, Role.admin)


SUMMARY_LENGTH = 60


def ensure_staff(principal: Principal) -> list[str]:
    """The caller's staff regions; 403 `auth.forbidden` for someone who has none."""
    paths = principal.paths_for(STAFF_ROLES)
    if not paths:
        raise Forbidden()
    return paths


def _in_scope(principal: Principal) -> Any:
    return and_(
        Case.kind.in_(STAFF_KINDS),  # type: ignore[attr-defined]
        or_(
            region_scope(Case.location_path, principal, STAFF_ROLES),
            region_scope(Case.queue_path, principal, STAFF_ROLES),
        ),
    )


def deadline_column() -> Any:
    """SQL: the deadline that matters in the case's state (null once it is out of hand)."""
    return case(
        (Case.state.in_(RESPONSE_STATES), Case.response_due_at),  # type: ignore[attr-defined]
        (Case.state.in_(RESOLUTION_STATES), Case.resolution_due_at),  # type: ignore[attr-defined]
        else_=None,
    )


def current_deadline(item: Case) -> datetime | None:
    """`deadline_column()` for a loaded case."""
    state = CaseState(item.state)
    if state in RESPONSE_STATES:
        return item.response_due_at
    if state in RESOLUTION_STATES:
        return item.resolution_due_at
    return None


# --- The queue ---------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueCursor:
    """Where a page ended: the last item's deadline (null sorts last) and id."""

    deadline: datetime | None
    case_id: uuid.UUID

    def encode(self) -> str:
        raw = json.dumps(
            {"d": self.deadline.isoformat() if self.deadline else None, "i": str(self.case_id)},
            separators=(",", ":"),
        )
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str | None) -> QueueCursor | None:
        if not cursor:
            return None
        try:
            raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
            deadline = datetime.fromisoformat(raw["d"]) if raw["d"] is not None else None
            if deadline is not None and deadline.tzinfo is None:
                raise ValueError("a cursor's deadline carries its offset")
            return cls(deadline=deadline, case_id=uuid.UUID(raw["i"]))
        except (ValueError, TypeError, KeyError, binascii.Error) as error:
            raise CursorInvalid() from error


@dataclass(frozen=True)
class QueueFilters:
    states: tuple[CaseState, ...] = ()
    kind: CaseKind | None = None
    category_id: uuid.UUID | None = None
    overdue: bool | None = None
    assignee_id: uuid.UUID | None = None
    region: str | None = None
    mine_only: bool = False  # queue=mine: the queue is exactly one of the caller's regions


def _item(
    row: Case, category: Category, assignee_id: uuid.UUID | None, nickname: str | None, at: datetime
) -> dict[str, Any]:
    deadline = current_deadline(row)
    return {
        "id": row.id,
        "number": row.number,
        "kind": row.kind,
        "category": CategoryRef(
            id=category.id, code=category.code, name=category.name, name_en=category.name_en
        ),
        "state": row.state,
        "priority": row.priority,
        "channel": row.channel,
        "grid_code": row.location_path,
        "queue_code": row.queue_path,
        "escalation_level": row.escalation_level,
        "assignee": UserRef(id=assignee_id, nickname=nickname) if assignee_id else None,
        "deadline": deadline,
        "overdue": deadline is not None and deadline < at,
        "created_at": row.created_at,
        "summary": row.description[:SUMMARY_LENGTH],
        "supporters": row.supporters,
        "version": row.version,
    }


async def list_queue(
    session: AsyncSession,
    principal: Principal,
    filters: QueueFilters,
    *,
    after: QueueCursor | None,
    limit: int,
) -> tuple[list[StaffCaseItem], str | None]:
    """A page of the caller's queue, soonest deadline first; and the cursor of the next page."""
    paths = ensure_staff(principal)
    at = now()
    assignee = aliased(User)
    deadline = deadline_column()
    query = (
        select(Case, Category, assignee.id, assignee.nickname)  # type: ignore[call-overload]
        .join(Category, Category.id == Case.category_id)
        .outerjoin(assignee, assignee.id == Case.assignee_id)
        .where(_in_scope(principal))
        .order_by(deadline.asc().nulls_last(), Case.id)
        .limit(limit + 1)
    )
    if filters.states:
        query = query.where(Case.state.in_(filters.states))  # type: ignore[attr-defined]
    if filters.kind is not None:
        query = query.where(Case.kind == filters.kind)
    if filters.category_id is not None:
        query = query.where(Case.category_id == filters.category_id)
    if filters.overdue is True:
        query = query.where(deadline < at)
    elif filters.overdue is False:
        query = query.where(or_(deadline.is_(None), deadline >= at))
    if filters.assignee_id is not None:
        query = query.where(Case.assignee_id == filters.assignee_id)
    if filters.region is not None:
        region = await regions_service.region_in_scope(
            session, principal, filters.region, STAFF_ROLES
        )
        query = query.where(Case.location_path.descendant_of(region.path))  # type: ignore[attr-defined]
    if filters.mine_only:
        query = query.where(cast(Case.queue_path, Text).in_(paths))
    if after is not None:
        if after.deadline is None:
            query = query.where(deadline.is_(None), Case.id > after.case_id)
        else:
            query = query.where(
                or_(
                    deadline.is_(None),
                    tuple_(deadline, Case.id) > tuple_(literal(after.deadline), after.case_id),
                )
            )
    rows = (await session.execute(query)).all()
    items = [
        StaffCaseItem.model_validate(_item(row, category, assignee_id, nickname, at))
        for row, category, assignee_id, nickname in rows[:limit]
    ]
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        next_cursor = QueueCursor(deadline=last.deadline, case_id=last.id).encode()
    return items, next_cursor


async def case_in_scope(session: AsyncSession, principal: Principal, case_id: uuid.UUID) -> Case:
    """The case if it lies in the caller's staff regions; `case.not_found` otherwise."""
    found = (
        await session.execute(select(Case).where(Case.id == case_id, _in_scope(principal)))  # type: ignore[arg-type]
    ).scalar_one_or_none()
    if found is None:
        raise cases_errors.CaseNotFound()
    return found


# --- Acting on a case --------------------------------------------------------------------


def acting_role(principal: Principal, item: Case, action: StaffAction) -> Role:
    """The role the caller acts in, among those they hold where the case is (or is queued)."""
    held = {
        grant.role
        for grant in principal.grants
        if path_within(item.location_path, grant.region_path)
        or path_within(item.queue_path, grant.region_path)
    }
    for role in _ROLE_PREFERENCE:
        if role in held and role in ACTION_ROLES[action]:
            return role
    raise errors.CaseActionForbidden(
        action=action.value, action_zh=workflow.ACTION_ZH[workflow.Action(action.value)]
    )


async def _ensure_staff_here(session: AsyncSession, user_id: uuid.UUID, item: Case) -> str | None:
    """The nickname of `user_id` if they hold a staff role covering the case's place."""
    row = (
        await session.execute(
            select(col(User.nickname))
            .join(RoleGrant, RoleGrant.user_id == User.id)  # type: ignore[arg-type]
            .where(
                User.id == user_id,  # type: ignore[arg-type]
                User.is_active.is_(True),  # type: ignore[attr-defined]
                RoleGrant.revoked_at.is_(None),  # type: ignore[union-attr]
                RoleGrant.role.in_(_EVERY_STAFF_ROLE),  # type: ignore[attr-defined]
                RoleGrant.region_path.ancestor_of(item.location_path),  # type: ignore[attr-defined]
            )
            .limit(1)
        )
    ).first()
    if row is None:
        raise errors.AssigneeNotStaffHere()
    return row[0]


async def act(
    session: AsyncSession,
    store: ObjectStore,
    principal: Principal,
    case_id: uuid.UUID,
    action: StaffAction,
    body: StaffActionBody,
) -> Case:
    """Apply a staff action: scope (404), role (403), state (409), body (422), version (409)."""
    prepared: storage_service.PreparedClaim | None = None
    if body.upload_ids and action is StaffAction.resolve:
        # S3 is asked before anything is locked or written, with no database connection held.
        prepared = await storage_service.prepare_claim(
            session, store, principal.user_id, body.upload_ids, (UploadPurpose.resolution_photo,)
        )
    item = await case_in_scope(session, principal, case_id)
    role = acting_role(principal, item, action)
    flow_action = workflow.Action(action.value)
    # A case that cannot take this step says so before any complaint about the body.
    workflow.next_state(flow_action, CaseState(item.state))
    if body.version != item.version:
        raise cases_errors.CaseChangedMeanwhile()
    if body.upload_ids and action is not StaffAction.resolve:
        raise errors.AttachmentsNotExpected()
    note = body.note or None
    at = now()
    changes: dict[str, Any] = {}
    data: dict[str, Any] = {}
    upload_ids: list[uuid.UUID] = []

    if action is StaffAction.accept:
        # The latest acceptance: a reopened case is answered afresh against new deadlines.
        changes["accepted_at"] = at
    elif action is StaffAction.assign:
        if body.assignee_id is None:
            raise errors.AssigneeRequired()
        nickname = await _ensure_staff_here(session, body.assignee_id, item)
        changes["assignee_id"] = body.assignee_id
        data = {"assignee_id": str(body.assignee_id), "assignee_nickname": nickname}
    elif action is StaffAction.resolve:
        if note is None:
            raise errors.ResolutionNeedsNote()
        if prepared is None:
            raise errors.ResolutionNeedsPhoto()
        uploads = await storage_service.claim_uploads(session, prepared)
        upload_ids = [upload.id for upload in uploads]
        changes["resolved_at"] = at
        data = {"upload_ids": [str(upload_id) for upload_id in upload_ids]}
    elif action is StaffAction.reject:
        if body.reason is None:
            raise errors.RejectReasonRequired()
        if body.reason is RejectReason.other and note is None:
            raise errors.RejectNeedsNote()
        changes["rejected_reason"] = body.reason.value
        data = {"reason": body.reason.value}
    elif action is StaffAction.escalate:
        target = workflow.parent_of(item.queue_path)
        if target is None:
            raise errors.CannotEscalate()
        changes["queue_path"] = target
        changes["escalation_level"] = item.escalation_level + 1
        data = {"reason": "manual", "from": item.queue_path, "to": target}
    elif action is StaffAction.comment and note is None:
        raise errors.CommentNeedsNote()

    event = await workflow.apply(
        session,
        item,
        flow_action,
        workflow.Actor(principal.user_id, role.value),
        expected_version=body.version,
        note=note,
        data=data,
        changes=changes,
    )
    if upload_ids:
        session.add_all(
            CaseAttachment(case_id=item.id, event_id=event.id, upload_id=upload_id, position=i)
            for i, upload_id in enumerate(upload_ids)
        )
        await session.flush()
    return item


# --- Registration by staff ---------------------------------------------------------------


def _replayed(earlier: Case, fingerprint: str) -> tuple[Case, bool]:
    return earlier, False


async def register_case(
    session: AsyncSession,
    principal: Principal,
    grid_map: GridMap,
    personal_data: PersonalData,
    *,
    idempotency_key: str | None,
    payload: CaseRegistration,
) -> tuple[Case, bool]:
    """Register a case for a resident who phoned or came in; (case, created).

    Idempotent as resident submission is: the same key with the same body answers the
    case registered the first time; the same key with another body is
    `case.idempotency_conflict`. The unique (submitted_by, idempotency_key) decides races.
    """
    ensure_staff(principal)
    key = check_idempotency_key(idempotency_key)
    fingerprint = request_hash("registration", payload.model_dump(mode="json"))
    earlier = await earlier_request(
        session,
        Case.submitted_by,
        principal.user_id,
        key,
        fingerprint,
        cases_errors.IdempotencyConflict,
    )
    if earlier is not None:
        return _replayed(earlier, fingerprint)

    kind = CaseKind(payload.kind)
    category = await categories_service.load_category(session, kind, payload.category)
    lat, lng = to_wgs84(payload.location.lat, payload.location.lng, payload.location.coord)
    located = grid_map.locate(lat, lng)
    if located is None:
        raise cases_errors.OutsideServiceArea()
    grid_code = located.grid.code
    roles = [
        role
        for role in _ROLE_PREFERENCE
        if any(
            grant.role is role and path_within(grid_code, grant.region_path)
            for grant in principal.grants
        )
    ]
    if not roles:
        raise errors.LocationOutsideYourArea()
    grid_id = (
        await session.execute(select(col(Region.id)).where(col(Region.path) == grid_code))
    ).scalar_one_or_none()
    if grid_id is None:
        # The in-memory map is a moment behind a grid that was just removed.
        raise cases_errors.OutsideServiceArea()

    extra: dict[str, Any] = {}
    reporter_id: uuid.UUID | None = None
    if payload.resident_phone is not None:
        # Linked only to the one account that bound the number: a number two accounts hold
        # (a recycled number an old account still has) says nothing of whose case it is.
        # Staff see the same answer whatever is found (`queries.reporter_shown`).
        holders = (
            (
                await session.execute(
                    select(col(User.id))
                    .where(
                        User.phone_hash == personal_data.lookup_hash(payload.resident_phone),  # type: ignore[arg-type]
                        User.is_active.is_(True),  # type: ignore[attr-defined]
                    )
                    .limit(2)
                )
            )
            .scalars()
            .all()
        )
        reporter_id = holders[0] if len(holders) == 1 else None
        extra["contact_phone_ciphertext"] = personal_data.encrypt(payload.resident_phone)
        extra["contact_phone_masked"] = mask_phone(payload.resident_phone)
    if payload.target is not None:
        extra["target_type"] = payload.target.type
        extra["target_name"] = payload.target.name

    opened = await workflow.open_case(
        session,
        kind=kind,
        category=category,
        description=payload.description,
        lat=lat,
        lng=lng,
        address=payload.address or None,
        grid_id=grid_id,
        grid_path=grid_code,
        queue_path=workflow.community_of(grid_code),
        submitted_by=principal.user_id,
        reporter_id=reporter_id,
        actor=workflow.Actor(principal.user_id, roles[0].value),
        idempotency_key=key,
        request_hash=fingerprint,
        channel=Channel(payload.channel.value),
        extra=extra,
    )
    if opened is None:
        # The same key was used before (or just now, by a request the insert waited for).
        # Answer its case, if the request is the same.
        winner = await earlier_request(
            session,
            Case.submitted_by,
            principal.user_id,
            key,
            fingerprint,
            cases_errors.IdempotencyConflict,
        )
        assert winner is not None, "ON CONFLICT found the key, so its case exists"
        return _replayed(winner, fingerprint)
    created, _ = opened
    return created, True
