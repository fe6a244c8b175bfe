"""Activities over HTTP: publishing, listing near me, enrolment and the waitlist.

Thin: every rule lives in `volunteers.activities`.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status
from pydantic import AwareDatetime

from backend.auth.principal import CurrentPrincipal
from backend.core.database import SessionDep
from backend.core.deps import SettingsDep
from backend.core.errors import problem_responses
from backend.core.idempotency import created_or_replayed, replayable
from backend.core.pagination import CursorParam, LimitParam, Page, decode_cursor
from backend.core.text import RegionCode, Verbatim
from backend.regions.coords import CoordSystem
from volunteers.activities import enrolment as enrolment_service
from volunteers.activities import errors, queries, schemas, service
from volunteers.models import ActivityState, EnrolmentState

router = APIRouter()


IdempotencyKey = Annotated[
    Verbatim | None,
    Header(
        alias="Idempotency-Key",
        description="Required. 1–128 visible ASCII characters, new for each activity and the "
        "same on every retry of it (e.g. a UUID made when the form is opened).",
    ),
]


# --- staff: managing activities ------------------------------------------------------------


@router.post(
    "/staff/activities",
    operation_id="create_activity",
    tags=["staff"],
    summary="Create an activity (a draft) for a community",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.StaffActivityOut,
    responses=replayable(
        errors.CREATE_ACTIVITY_ERRORS,
        schemas.StaffActivityOut,
        "A retry: the draft this Idempotency-Key made before",
    ),
)
async def create_activity(
    body: schemas.ActivityCreate,
    session: SessionDep,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """A new activity in `draft`, organised by a community within the caller's regions
    (community staff there, or an admin above it); publish it to let volunteers enrol.

    The fence is a radius around the place (20–5000 m) or a polygon drawn around it, in the
    coordinate system of `location` unless `fence.coord` says otherwise; both are stored in
    WGS-84. The window lasts at most 24 hours. A retry with the same `Idempotency-Key` and
    body answers the same draft (200); the same key with another body is refused (409).
    """
    created = await service.create_activity(session, principal, body, idempotency_key)
    view = await queries.staff_activity_view(session, created.activity)
    return created_or_replayed(view, replayed=created.replayed)


@router.get(
    "/staff/activities",
    operation_id="list_staff_activities",
    tags=["staff"],
    summary="Activities organised in my regions",
    response_model=Page[schemas.StaffActivityItem],
    responses=problem_responses(*errors.LIST_STAFF_ACTIVITIES_ERRORS),
)
async def list_staff_activities(
    session: SessionDep,
    principal: CurrentPrincipal,
    state: Annotated[ActivityState | None, Query(description="Only in this state.")] = None,
    starts_from: Annotated[
        AwareDatetime | None, Query(alias="from", description="Starting at or after this.")
    ] = None,
    starts_to: Annotated[
        AwareDatetime | None, Query(alias="to", description="Starting before this.")
    ] = None,
    cursor: CursorParam = None,
    limit: LimitParam = 20,
) -> Page[schemas.StaffActivityItem]:
    """Activities organised within the caller's regions (community staff, grid workers and
    admins), newest first, with their places taken and the queue."""
    return await queries.list_staff_activities(
        session,
        principal,
        state=state,
        starts_from=starts_from,
        starts_to=starts_to,
        after=decode_cursor(cursor),
        limit=limit,
    )


@router.get(
    "/staff/activities/{activity_id}",
    operation_id="get_staff_activity",
    tags=["staff"],
    summary="An activity with its enrolment and attendance counts",
    response_model=schemas.StaffActivityOut,
    responses=problem_responses(*errors.GET_STAFF_ACTIVITY_ERRORS),
)
async def get_staff_activity(
    activity_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> schemas.StaffActivityOut:
    """Drafts included; outside the caller's regions it does not exist (404)."""
    activity = await queries.staff_activity(session, principal, activity_id)
    return await queries.staff_activity_view(session, activity)


@router.patch(
    "/staff/activities/{activity_id}",
    operation_id="update_activity",
    tags=["staff"],
    summary="Change an activity",
    response_model=schemas.StaffActivityOut,
    responses=problem_responses(*errors.UPDATE_ACTIVITY_ERRORS),
)
async def update_activity(
    activity_id: uuid.UUID,
    body: schemas.ActivityUpdate,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> schemas.StaffActivityOut:
    """A draft takes any change. A published activity only takes a new description or
    address, a capacity not below the places taken (places added go to the queue at once,
    in its order) and a later end; anything else is 409 `activity.fields_locked`. A
    cancelled or finished one takes none. Sending the same change again changes nothing.
    """
    activity = await service.update_activity(session, principal, activity_id, body)
    return await queries.staff_activity_view(session, activity)


@router.post(
    "/staff/activities/{activity_id}/publish",
    operation_id="publish_activity",
    tags=["staff"],
    summary="Publish a draft: volunteers can find it and enrol",
    response_model=schemas.StaffActivityOut,
    responses=problem_responses(*errors.PUBLISH_ACTIVITY_ERRORS),
)
async def publish_activity(
    activity_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> schemas.StaffActivityOut:
    """Draft -> published, if it starts in the future. Publishing a published activity
    answers it as it is; a cancelled or finished one is 409 `activity.illegal_transition`."""
    activity = await service.publish_activity(session, principal, activity_id)
    return await queries.staff_activity_view(session, activity)


@router.post(
    "/staff/activities/{activity_id}/cancel",
    operation_id="cancel_activity",
    tags=["staff"],
    summary="Cancel an activity; its volunteers see why",
    response_model=schemas.StaffActivityOut,
    responses=problem_responses(*errors.CANCEL_ACTIVITY_ERRORS),
)
async def cancel_activity(
    activity_id: uuid.UUID,
    body: schemas.CancelIn,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> schemas.StaffActivityOut:
    """Draft or published -> cancelled. Every enrolment holding a place or waiting for one
    is cancelled (`cancelled_by: activity_cancelled`); the volunteers see it, with the
    reason, in their enrolments. Cancelling a cancelled activity answers it as it is (the
    first reason stays); a finished one is 409 `activity.illegal_transition`."""
    activity = await service.cancel_activity(session, principal, activity_id, body.reason)
    return await queries.staff_activity_view(session, activity)


@router.post(
    "/staff/activities/{activity_id}/finish",
    operation_id="finish_activity",
    tags=["staff"],
    summary="Finish an activity now and record the no-shows",
    response_model=schemas.StaffActivityOut,
    responses=problem_responses(*errors.FINISH_ACTIVITY_ERRORS),
)
async def finish_activity(
    activity_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> schemas.StaffActivityOut:
    """Published (and started) -> finished, without waiting for the worker, which does the
    same once the check-out grace after the end has passed. Volunteers who held a place and
    never checked in become no-shows; attendance never checked out goes to review (flag
    `no_check_out`); those still waiting have their enrolment cancelled
    (`activity_finished`). Finishing a finished activity answers it as it is."""
    activity = await service.finish_activity(session, principal, activity_id)
    return await queries.staff_activity_view(session, activity)


@router.get(
    "/staff/activities/{activity_id}/enrolments",
    operation_id="list_activity_enrolments",
    tags=["staff"],
    summary="An activity's roster: who holds a place, who waits",
    response_model=Page[schemas.StaffEnrolmentOut],
    responses=problem_responses(*errors.LIST_ACTIVITY_ENROLMENTS_ERRORS),
)
async def list_activity_enrolments(
    activity_id: uuid.UUID,
    session: SessionDep,
    principal: CurrentPrincipal,
    state: Annotated[EnrolmentState | None, Query(description="Only in this state.")] = None,
    cursor: CursorParam = None,
    limit: LimitParam = 20,
) -> Page[schemas.StaffEnrolmentOut]:
    """For the staff who host it (community staff and grid workers of the organising
    community, admins above): each enrolment, newest first, with the volunteer's number and
    name, the place in the queue, and the attendance state once they checked in."""
    return await queries.list_activity_enrolments(
        session,
        principal,
        activity_id,
        state=state,
        after=decode_cursor(cursor),
        limit=limit,
    )


# --- volunteers: finding and enrolling -----------------------------------------------------


@router.get(
    "/activities",
    operation_id="list_activities",
    tags=["activities"],
    summary="Activities near me, or in a community, with the places left",
    response_model=Page[schemas.ActivityItem],
    responses=problem_responses(*errors.LIST_ACTIVITIES_ERRORS),
)
async def list_activities(
    session: SessionDep,
    principal: CurrentPrincipal,
    lat: Annotated[
        float | None, Query(ge=-90, le=90, allow_inf_nan=False, description="Your latitude.")
    ] = None,
    lng: Annotated[
        float | None,
        Query(ge=-180, le=180, allow_inf_nan=False, description="Your longitude."),
    ] = None,
    coord: Annotated[
        CoordSystem, Query(description="Coordinate system of lat/lng: `gcj02` or `wgs84`.")
    ] = "gcj02",
    radius_km: Annotated[
        float,
        Query(
            gt=0,
            le=service.MAX_RADIUS_KM,
            allow_inf_nan=False,
            description="How far to look around lat/lng.",
        ),
    ] = service.DEFAULT_RADIUS_KM,
    community: Annotated[
        RegionCode | None,
        Query(
            description="A community's code (any region's: the activities organised in it).",
        ),
    ] = None,
    cursor: CursorParam = None,
    limit: LimitParam = 20,
) -> Page[schemas.ActivityItem]:
    """Published activities that have not ended yet, for anyone logged in (residents can
    look before they sign up; only approved volunteers enrol).

    With `lat` and `lng`: those within `radius_km` (default 5, at most 50), nearest first,
    with `distance_m`. Else with `community`: that community's, soonest first. Else the
    caller's home community as a volunteer; someone with none is asked for a place (422
    `activity.place_required`). A team's activities are listed for its members only. Each
    shows the places left, the queue, the points it pays (null when no earning rule
    applies) and the caller's own enrolment.
    """
    near = None
    if lat is not None and lng is not None:
        near = queries.Near(lat=lat, lng=lng, coord=coord, radius_km=radius_km)
    return await queries.list_activities(
        session, principal, near=near, community=community, cursor=cursor, limit=limit
    )


@router.get(
    "/activities/{activity_id}",
    operation_id="get_activity",
    tags=["activities"],
    summary="An activity: where, when, the check-in area and the places left",
    response_model=schemas.ActivityOut,
    responses=problem_responses(*errors.GET_ACTIVITY_ERRORS),
)
async def get_activity(
    activity_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> schemas.ActivityOut:
    """The detail of a published, cancelled or finished activity (with the reason when it
    was cancelled) and the caller's enrolment; the fence is in WGS-84. A draft does not
    exist here except for the staff who host activities where it is organised."""
    return await queries.get_activity(session, principal, activity_id)


@router.post(
    "/activities/{activity_id}/enrolments",
    operation_id="enrol_in_activity",
    tags=["activities"],
    summary="Enrol: take a place, or join the waitlist when it is full",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.EnrolmentOut,
    responses=replayable(
        errors.ENROL_IN_ACTIVITY_ERRORS,
        schemas.EnrolmentOut,
        "Already enrolled or waiting: that enrolment, unchanged",
    ),
)
async def enrol_in_activity(
    activity_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> Response:
    """For approved volunteers, while the activity is published and has not started (a
    team's activity: its members only). Answers `enrolled` while places are left, else
    `waitlisted` with the position in the queue; a place that frees up goes to the first
    in the queue. Idempotent: enrolling again answers the same enrolment (200); after
    cancelling, enrolling again joins at the end of the queue (201).
    """
    outcome = await enrolment_service.enrol(session, principal, activity_id)
    [view] = await queries.enrolment_views(session, [outcome.enrolment])
    return created_or_replayed(view, replayed=outcome.replayed)


@router.post(
    "/enrolments/{enrolment_id}/cancel",
    operation_id="cancel_enrolment",
    tags=["activities"],
    summary="Cancel my enrolment; the first in the queue gets the place",
    response_model=schemas.EnrolmentOut,
    responses=problem_responses(*errors.CANCEL_ENROLMENT_ERRORS),
)
async def cancel_enrolment(
    enrolment_id: uuid.UUID,
    session: SessionDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
) -> schemas.EnrolmentOut:
    """Give up a place until `SHANZHI_VOLUNTEER_CANCEL_HOURS` (default 2) before the start
    (later: 409 `enrolment.too_late_to_cancel`, with the `deadline`); the place goes to the
    first in the queue at once. Leaving the queue is possible until the activity ends.
    Only your own enrolments exist here. Cancelling a cancelled enrolment answers it."""
    enrolment = await enrolment_service.cancel_enrolment(
        session, principal, enrolment_id, cancel_hours=settings.volunteer_cancel_hours
    )
    [view] = await queries.enrolment_views(session, [enrolment])
    return view


@router.get(
    "/me/enrolments",
    operation_id="list_my_enrolments",
    tags=["activities"],
    summary="My enrolments, newest first",
    response_model=Page[schemas.EnrolmentOut],
    responses=problem_responses(*errors.LIST_MY_ENROLMENTS_ERRORS),
)
async def list_my_enrolments(
    session: SessionDep,
    principal: CurrentPrincipal,
    state: Annotated[EnrolmentState | None, Query(description="Only in this state.")] = None,
    cursor: CursorParam = None,
    limit: LimitParam = 20,
) -> Page[schemas.EnrolmentOut]:
    """Each with the activity, the state, the position in the queue while waiting, and who
    cancelled it: an activity called off shows `cancelled_by: activity_cancelled` with the
    organiser's `cancel_reason` (this is how volunteers are told)."""
    return await queries.list_my_enrolments(
        session, principal, state=state, after=decode_cursor(cursor), limit=limit
    )
