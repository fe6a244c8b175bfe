"""The staff workbench over HTTP: the queue, actions on a case, and registration by phone."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Response, status

from backend.auth.principal import CurrentPrincipal, RateLimit
from backend.cases import queries as cases_queries
from backend.cases import schemas
from backend.cases.models import CaseKind, CaseState
from backend.cases.staff import errors, service
from backend.cases.staff.schemas import (
    CaseRegistration,
    StaffAction,
    StaffActionBody,
    StaffCaseItem,
)
from backend.core.database import SessionDep
from backend.core.deps import GridMapDep, PersonalDataDep, StoreDep
from backend.core.errors import problem_responses
from backend.core.idempotency import REPLAY_HEADER, replayable
from backend.core.pagination import CursorParam, LimitParam, Page
from backend.core.text import Verbatim
from backend.regions.schemas import RegionQuery

router = APIRouter(prefix="/staff", tags=["staff"])


@router.get(
    "/cases",
    operation_id="list_staff_cases",
    response_model=Page[StaffCaseItem],
    responses=problem_responses(*errors.LIST_STAFF_CASES_ERRORS),
)
async def list_staff_cases(
    principal: CurrentPrincipal,
    session: SessionDep,
    state: Annotated[
        list[CaseState] | None, Query(description="Only these states (repeat the parameter).")
    ] = None,
    kind: Annotated[Literal["report", "complaint"] | None, Query()] = None,
    category: Annotated[uuid.UUID | None, Query(description="A category's id.")] = None,
    overdue: Annotated[
        bool | None,
        Query(description="true: the current deadline has passed; false: it has not."),
    ] = None,
    assignee: Annotated[
        Literal["me"] | uuid.UUID | None,
        Query(description="`me`, or a staff member's user id."),
    ] = None,
    region: RegionQuery = None,
    queue: Annotated[
        Literal["mine"] | None,
        Query(description="`mine`: queued exactly at one of your regions (not below them)."),
    ] = None,
    cursor: CursorParam = None,
    limit: LimitParam = 20,
) -> Page[StaffCaseItem]:
    """The reports and complaints in your regions, the soonest deadline first.

    A case is listed when the place it is at, or the region handling it, lies in a region
    where you hold a staff role. The deadline is the one that matters now: the response
    deadline until the case is accepted, then the resolution deadline; cases out of hand
    (resolved, closed, rejected) come last. Needs a staff role (403 otherwise).
    """
    assignee_id = principal.user_id if assignee == "me" else None
    if isinstance(assignee, uuid.UUID):
        assignee_id = assignee
    filters = service.QueueFilters(
        states=tuple(state or ()),
        kind=CaseKind(kind) if kind is not None else None,
        category_id=category,
        overdue=overdue,
        assignee_id=assignee_id,
        region=region,
        mine_only=queue == "mine",
    )
    items, next_cursor = await service.list_queue(
        session,
        principal,
        filters,
        after=service.QueueCursor.decode(cursor),
        limit=limit,
    )
    return Page(items=items, next_cursor=next_cursor)


@router.post(
    "/cases",
    operation_id="register_case",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.CaseOut,
    responses=replayable(
        errors.REGISTER_CASE_ERRORS,
        schemas.CaseOut,
        "A retry: the case this Idempotency-Key registered before",
    ),
)
async def register_case(
    body: CaseRegistration,
    response: Response,
    principal: CurrentPrincipal,
    session: SessionDep,
    personal_data: PersonalDataDep,
    grid_map: GridMapDep,
    store: StoreDep,
    _: Annotated[None, RateLimit("case_register", "30/minute")],
    idempotency_key: Annotated[
        Verbatim | None,
        Header(
            alias="Idempotency-Key",
            description="Required. 1–128 visible ASCII characters, new for each case and the "
            "same on every retry of it (e.g. a UUID).",
        ),
    ] = None,
) -> schemas.CaseOut:
    """Register a report or complaint for a resident who phoned or came to the counter.

    You must hold a staff role where the place is. With the caller's mobile number the case
    is linked to the resident who bound that number (it is then among their cases), and the
    number is kept encrypted and shown masked as the contact. Staff never learn whose account
    it is, nor whether there is one: the answer, and every later view of the case, is the
    same either way. 201 with the new case; a retry with the same `Idempotency-Key` and body
    answers 200 with the same case.
    """
    registered, created = await service.register_case(
        session,
        principal,
        grid_map,
        personal_data,
        idempotency_key=idempotency_key,
        payload=body,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
        response.headers[REPLAY_HEADER] = "true"
    return await cases_queries.case_view(session, store, registered, viewer=principal)


@router.post(
    "/cases/{case_id}/{action}",
    operation_id="act_on_case",
    response_model=schemas.CaseOut,
    responses=problem_responses(*errors.ACT_ON_CASE_ERRORS),
)
async def act_on_case(
    case_id: uuid.UUID,
    action: StaffAction,
    body: StaffActionBody,
    principal: CurrentPrincipal,
    session: SessionDep,
    store: StoreDep,
    _: Annotated[None, RateLimit("staff_action", "120/minute")],
) -> schemas.CaseOut:
    """Accept, assign, start, resolve, reject, escalate or comment on a case in your regions.

    Send the `version` you saw: if someone acted since, the answer is 409
    `case.version_conflict` and nothing changes. Grid workers may accept, start, resolve,
    escalate and comment; community staff, department handlers and admins may also assign
    and reject. `assign` needs `assignee_id` (staff covering the case's place); `resolve`
    needs a `note` and at least one `resolution_photo` upload; `reject` needs a `reason`
    (and a `note` for `other`); `escalate` hands the case to the region above its queue.
    """
    store = store
    acted = await service.act(session, store, principal, case_id, action, body)
    return await cases_queries.case_view(session, store, acted, viewer=principal)
