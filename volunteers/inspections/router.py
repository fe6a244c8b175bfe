"""Inspections over HTTP: the checklist, filing a house's results, and the lists.

Thin: every rule lives in `volunteers.inspections`.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Response, status

from backend.auth.principal import AUTH_ERRORS, CurrentPrincipal, RateLimit
from backend.core.database import SessionDep
from backend.core.deps import GridMapDep, StoreDep
from backend.core.errors import problem_responses
from backend.core.idempotency import KEY_ERRORS, created_or_replayed, replayable
from backend.core.pagination import (
    CursorParam,
    LimitParam,
    Page,
    cut_page,
    decode_cursor,
)
from backend.core.ratelimit import RateLimited
from backend.core.text import Verbatim
from backend.storage.errors import CLAIM_ERRORS
from volunteers.errors import ActivityNotFound, NotSignedUp, VolunteerNotApproved
from volunteers.inspections import errors, schemas, service
from volunteers.inspections.errors import (
    ActivityNotOpen,
    AlreadyCheckedOut,
    CategoryUnavailable,
    HouseOutsideServiceArea,
    IdempotencyConflict,
    ItemUnknown,
    NotAnInspection,
    NotCheckedIn,
)

router = APIRouter()


_FILE_ERRORS = (
    *AUTH_ERRORS,
    RateLimited,
    *KEY_ERRORS,
    IdempotencyConflict,
    ActivityNotFound,
    NotAnInspection,
    NotSignedUp,
    VolunteerNotApproved,
    ActivityNotOpen,
    NotCheckedIn,
    AlreadyCheckedOut,
    ItemUnknown,
    HouseOutsideServiceArea,
    CategoryUnavailable,
    *CLAIM_ERRORS,
)


IdempotencyKey = Annotated[
    Verbatim | None,
    Header(
        alias="Idempotency-Key",
        description="Required. 1–128 visible ASCII characters, new for each house and the "
        "same on every retry of it (e.g. a UUID made when the volunteer taps submit).",
    ),
]


def _filing_responses() -> dict[int | str, dict[str, Any]]:
    return replayable(
        _FILE_ERRORS,
        schemas.InspectionOut,
        "A retry: the inspection this Idempotency-Key filed before",
    )


@router.get(
    "/activities/{activity_id}/checklist",
    operation_id="get_inspection_checklist",
    tags=["activities"],
    summary="The checklist of an inspection activity",
    response_model=schemas.ChecklistOut,
    responses=problem_responses(*errors.GET_INSPECTION_CHECKLIST_ERRORS),
)
async def get_inspection_checklist(
    activity_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> schemas.ChecklistOut:
    """What to check at each house during a rental-house inspection or fire-safety check,
    and the report category a failed item is filed under.

    Any other activity (a patrol, community service, ...) has no checklist (409). A draft
    activity is found only by the staff who host it (404 for anyone else).
    """
    return await service.get_checklist(session, principal, activity_id)


@router.post(
    "/activities/{activity_id}/inspections",
    operation_id="file_inspection",
    tags=["activities"],
    summary="File a house's inspection; failed items become reports",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.InspectionOut,
    responses=_filing_responses(),
)
async def file_inspection(
    activity_id: uuid.UUID,
    body: schemas.InspectionCreate,
    session: SessionDep,
    grid_map: GridMapDep,
    store: StoreDep,
    principal: CurrentPrincipal,
    _: Annotated[None, RateLimit("inspection_file", "30/minute")],
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Record the checklist results of one house, as an approved volunteer checked in at
    the activity (check in first; after check-out it is refused).

    Each failed item is filed as a report (channel `inspection`) with you as its reporter,
    at the house, in the item's category, with its note and photos, unless `report` is
    false. The answer gives each report's id, number and state; follow it like any report
    of yours (`GET /v1/cases/{id}`). A house outside the service area, an item not on the
    checklist or a report category no longer in use refuses the whole inspection and
    nothing is written. A retry with the same `Idempotency-Key` and body answers the same
    inspection (200) and files nothing again; the same key with another body is refused.
    """
    filed = await service.file_inspection(
        session,
        grid_map=grid_map,
        store=store,
        principal=principal,
        activity_id=activity_id,
        body=body,
        idempotency_key=idempotency_key,
    )
    return created_or_replayed(filed.inspection, replayed=filed.replayed)


@router.get(
    "/activities/{activity_id}/inspections",
    operation_id="list_my_inspections",
    tags=["activities"],
    summary="My inspections at an activity",
    response_model=Page[schemas.InspectionOut],
    responses=problem_responses(*errors.LIST_MY_INSPECTIONS_ERRORS),
)
async def list_my_inspections(
    activity_id: uuid.UUID,
    session: SessionDep,
    principal: CurrentPrincipal,
    cursor: CursorParam = None,
    limit: LimitParam = 20,
) -> Page[schemas.InspectionOut]:
    """The houses you inspected at this activity, newest first, with the reports they
    became and where those stand now. Only your own."""
    found = await service.my_inspections(
        session, principal, activity_id, after=decode_cursor(cursor), limit=limit + 1
    )
    page, next_cursor = cut_page(found, limit)
    return Page(items=list(page), next_cursor=next_cursor)


@router.get(
    "/staff/activities/{activity_id}/inspections",
    operation_id="list_activity_inspections",
    tags=["staff"],
    summary="Every inspection filed at an activity",
    response_model=Page[schemas.StaffInspectionOut],
    responses=problem_responses(*errors.LIST_ACTIVITY_INSPECTIONS_ERRORS),
)
async def list_activity_inspections(
    activity_id: uuid.UUID,
    session: SessionDep,
    principal: CurrentPrincipal,
    cursor: CursorParam = None,
    limit: LimitParam = 20,
) -> Page[schemas.StaffInspectionOut]:
    """The houses inspected at an activity, newest first: who filed each (volunteer number
    and name), every item's answer and the reports it became.

    For community staff and grid workers (or admins) whose regions cover the organising
    community; for anyone else the activity does not exist (404).
    """
    found = await service.activity_inspections(
        session, principal, activity_id, after=decode_cursor(cursor), limit=limit + 1
    )
    page, next_cursor = cut_page(found, limit)
    return Page(items=list(page), next_cursor=next_cursor)
