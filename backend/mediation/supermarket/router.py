"""The mediation supermarket over HTTP: studios, mediators, choosing and assigning.

Thin: every rule lives in `backend.mediation.supermarket`.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from backend.auth.principal import CurrentPrincipal
from backend.core.database import SessionDep
from backend.core.deps import GridMapDep
from backend.core.errors import problem_responses
from backend.core.idempotency import created_or_replayed, replayable
from backend.core.pagination import (
    CursorParam,
    LimitParam,
    Page,
    cut_page,
    decode_cursor,
)
from backend.core.text import RegionCode
from backend.mediation.models import DisputeType, MediationState
from backend.mediation.supermarket import errors, mediators, schemas, service, studios
from backend.regions.coords import CoordSystem

router = APIRouter()


StatesQuery = Annotated[
    list[MediationState] | None, Query(description="Only these states (repeat the parameter).")
]


# --- admins: studios -----------------------------------------------------------------------


@router.post(
    "/admin/mediation-studios",
    operation_id="create_mediation_studio",
    tags=["admin"],
    summary="Open a mediation studio for an area",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.StudioOut,
    responses=replayable(
        errors.CREATE_MEDIATION_STUDIO_ERRORS,
        schemas.StudioOut,
        "A retry: the studio made before",
    ),
)
async def create_mediation_studio(
    body: schemas.StudioCreate, session: SessionDep, principal: CurrentPrincipal
) -> Response:
    """A studio of the mediation supermarket serving `area` (a region you administer, or one
    below it) with its specialties; residents with a dispute of those kinds located in the
    area can choose it once it has a mediator with room.

    The name is unique in the area, which makes a retry safe: the same studio sent again
    answers the one made before (200 with `Idempotent-Replay: true`); another studio of the
    same name is 409 `mediation.studio_name_taken`.
    """
    studio, created = await studios.create_studio(session, principal, body)
    (view,) = await studios.studio_views(session, [studio])
    return created_or_replayed(view, replayed=not created)


@router.get(
    "/admin/mediation-studios",
    operation_id="list_mediation_studios",
    tags=["admin"],
    summary="The mediation studios of my regions",
    response_model=Page[schemas.StudioOut],
    responses=problem_responses(*errors.LIST_MEDIATION_STUDIOS_ERRORS),
)
async def list_mediation_studios(
    session: SessionDep,
    principal: CurrentPrincipal,
    active: Annotated[bool | None, Query(description="Only active (or inactive) ones.")] = None,
    area: Annotated[
        RegionCode | None,
        Query(description="Only studios within it."),
    ] = None,
    cursor: CursorParam = None,
    limit: LimitParam = 20,
) -> Page[schemas.StudioOut]:
    """Studios whose area lies in a region you administer, newest first, each with its
    active mediators, the cases they carry and how many they may carry at once."""
    found = await studios.list_studios(
        session, principal, active=active, area=area, after=decode_cursor(cursor), limit=limit
    )
    shown, next_cursor = cut_page(found, limit)
    return Page(items=await studios.studio_views(session, shown), next_cursor=next_cursor)


@router.patch(
    "/admin/mediation-studios/{studio_id}",
    operation_id="update_mediation_studio",
    tags=["admin"],
    summary="Change or close a mediation studio",
    response_model=schemas.StudioOut,
    responses=problem_responses(*errors.UPDATE_MEDIATION_STUDIO_ERRORS),
)
async def update_mediation_studio(
    studio_id: uuid.UUID,
    body: schemas.StudioUpdate,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> schemas.StudioOut:
    """Change the name, description or specialties, or set `active`. An inactive studio is
    no longer offered to residents and its mediators get no new cases; the cases they carry
    stay with them. Sending the same change again changes nothing."""
    studio = await studios.update_studio(session, principal, studio_id, body)
    (view,) = await studios.studio_views(session, [studio])
    return view


# --- admins: mediators ---------------------------------------------------------------------


@router.post(
    "/admin/mediators",
    operation_id="create_mediator",
    tags=["admin"],
    summary="Register a user as a mediator (grants the mediator role)",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.MediatorOut,
    responses=replayable(
        errors.CREATE_MEDIATOR_ERRORS,
        schemas.MediatorOut,
        "A retry: the mediator entry made before",
    ),
)
async def create_mediator(
    body: schemas.MediatorCreate, session: SessionDep, principal: CurrentPrincipal
) -> Response:
    """Put an existing user (who has logged in once) in the supermarket as a mediator of
    `area`, a region you administer, optionally in a studio whose area holds theirs, and
    grant them the `mediator` role there (unless they hold it already).

    A user has one entry, which makes a retry safe: the same registration sent again answers
    the entry made before (200 with `Idempotent-Replay: true`); a different one is 409
    `mediation.mediator_exists` (change the entry instead).
    """
    mediator, created = await mediators.create_mediator(session, principal, body)
    (view,) = await mediators.mediator_views(session, [mediator])
    return created_or_replayed(view, replayed=not created)


@router.get(
    "/admin/mediators",
    operation_id="list_mediators",
    tags=["admin"],
    summary="The mediators of my regions, with their load",
    response_model=Page[schemas.MediatorOut],
    responses=problem_responses(*errors.LIST_MEDIATORS_ERRORS),
)
async def list_mediators(
    session: SessionDep,
    principal: CurrentPrincipal,
    studio_id: Annotated[uuid.UUID | None, Query(description="Only this studio's.")] = None,
    active: Annotated[bool | None, Query(description="Only active (or inactive) ones.")] = None,
    cursor: CursorParam = None,
    limit: LimitParam = 20,
) -> Page[schemas.MediatorOut]:
    """Mediators whose area lies in a region you administer, newest first, each with the
    cases they carry now (assigned, in session or waiting for an agreement)."""
    found = await mediators.list_mediators(
        session,
        principal,
        studio_id=studio_id,
        active=active,
        after=decode_cursor(cursor),
        limit=limit,
    )
    shown, next_cursor = cut_page(found, limit)
    return Page(items=await mediators.mediator_views(session, shown), next_cursor=next_cursor)


@router.patch(
    "/admin/mediators/{mediator_id}",
    operation_id="update_mediator",
    tags=["admin"],
    summary="Change or deactivate a mediator",
    response_model=schemas.MediatorOut,
    responses=problem_responses(*errors.UPDATE_MEDIATOR_ERRORS),
)
async def update_mediator(
    mediator_id: uuid.UUID,
    body: schemas.MediatorUpdate,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> schemas.MediatorOut:
    """Change a mediator of your regions. `active: false` (or a `max_active` below what they
    carry) means no new cases; the ones they carry stay until a supervisor reassigns them. A
    new `area` moves their `mediator` role with it. Sending the same change again changes
    nothing."""
    mediator = await mediators.update_mediator(session, principal, mediator_id, body)
    (view,) = await mediators.mediator_views(session, [mediator])
    return view


# --- residents: choosing a studio ----------------------------------------------------------


@router.get(
    "/mediation-studios",
    operation_id="list_fitting_studios",
    tags=["mediation"],
    summary="The mediation studios I may choose for a dispute here",
    response_model=schemas.FittingStudios,
    responses=problem_responses(*errors.LIST_FITTING_STUDIOS_ERRORS),
)
async def list_fitting_studios(
    session: SessionDep,
    grid_map: GridMapDep,
    principal: CurrentPrincipal,
    dispute_type: Annotated[DisputeType, Query(description="What the dispute is about.")],
    lat: Annotated[float, Query(ge=-90, le=90, allow_inf_nan=False, description="Latitude.")],
    lng: Annotated[float, Query(ge=-180, le=180, allow_inf_nan=False, description="Longitude.")],
    coord: Annotated[
        CoordSystem, Query(description="`gcj02` (as wx.getLocation gives it) or `wgs84`.")
    ] = "gcj02",
) -> schemas.FittingStudios:
    """The active studios that take this kind of dispute where the point is (their area
    holds the point's grid) and have a mediator with room now: available ones first, then
    the closest. Mediators are shown by display name and title only."""
    place = service.place_at(grid_map, lat, lng, coord)
    return await service.list_fitting_studios(session, dispute_type, place)


@router.put(
    "/mediations/{mediation_id}/studio",
    operation_id="choose_mediation_studio",
    tags=["mediation"],
    summary="Choose the studio for my mediation",
    response_model=schemas.StudioChoiceOut,
    responses=problem_responses(*errors.CHOOSE_MEDIATION_STUDIO_ERRORS),
)
async def choose_mediation_studio(
    mediation_id: uuid.UUID,
    body: schemas.StudioChoice,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> schemas.StudioChoiceOut:
    """The applicant chooses one of the studios that fit the dispute (see
    `list_fitting_studios`), or changes their choice, until a mediator is assigned (then
    409 `mediation.studio_choice_closed`).

    While the respondents are deciding, the choice is kept for the assignment that follows
    their consent. If the mediation already waits for a mediator, the studio's fitting
    mediator with the lightest load takes it at once. Choosing the same studio again
    changes nothing, so a retry is safe.
    """
    return await service.choose_mediation_studio(session, principal, mediation_id, body.studio_id)


# --- supervisors ---------------------------------------------------------------------------


@router.get(
    "/staff/mediations",
    operation_id="list_supervised_mediations",
    tags=["staff"],
    summary="The mediations in the regions I supervise",
    response_model=Page[schemas.SupervisedMediation],
    responses=problem_responses(*errors.LIST_SUPERVISED_MEDIATIONS_ERRORS),
)
async def list_supervised_mediations(
    session: SessionDep,
    principal: CurrentPrincipal,
    state: StatesQuery = None,
    cursor: CursorParam = None,
    limit: LimitParam = 20,
) -> Page[schemas.SupervisedMediation]:
    """Mediations located in regions where you are admin, newest first: number, dispute
    type, state, mediator, days open, time limit, escalation. No parties' contact details.
    Only admins supervise mediation (403 `mediation.supervisors_only` for anyone else)."""
    found = await service.list_supervised_mediations(
        session, principal, states=state or (), after=decode_cursor(cursor), limit=limit
    )
    shown, next_cursor = cut_page(found, limit, key=lambda item: item.id)
    return Page(items=list(shown), next_cursor=next_cursor)


@router.post(
    "/staff/mediations/{mediation_id}/assign",
    operation_id="assign_mediation",
    tags=["staff"],
    summary="Assign or reassign the mediator of a mediation",
    response_model=schemas.SupervisedMediation,
    responses=problem_responses(*errors.ASSIGN_MEDIATION_ERRORS),
)
async def assign_mediation(
    mediation_id: uuid.UUID,
    body: schemas.Assignment,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> schemas.SupervisedMediation:
    """Give a mediation that waits for a mediator to one, or an open one to another (the
    note goes on its timeline). The mediator must be active, have the specialty the dispute
    needs and cover its place (409 with the reason otherwise); a supervisor may go beyond
    their `max_active`. Assigning the mediator it already has answers it unchanged, so a
    retry is safe. Only admins of the regions above the mediation find it here (404 for
    anyone else, its parties and mediator included)."""
    return await service.assign_mediation(
        session, principal, mediation_id, body.mediator_id, body.note
    )


# --- the mediator's own queue --------------------------------------------------------------


@router.get(
    "/mediator/mediations",
    operation_id="list_my_mediation_cases",
    tags=["mediation"],
    summary="The mediations assigned to me (mediators)",
    response_model=Page[schemas.MediatorCaseItem],
    responses=problem_responses(*errors.LIST_MY_MEDIATION_CASES_ERRORS),
)
async def list_my_mediation_cases(
    session: SessionDep,
    principal: CurrentPrincipal,
    state: StatesQuery = None,
    cursor: CursorParam = None,
    limit: LimitParam = 20,
) -> Page[schemas.MediatorCaseItem]:
    """The cases assigned to you as a mediator, newest first: number, dispute type, state,
    the parties' names, the next session and the time limit. No phones here: the case view
    shows them masked to you. 403 `mediation.not_a_mediator` without a mediator entry."""
    found = await service.list_my_mediation_cases(
        session, principal, states=state or (), after=decode_cursor(cursor), limit=limit
    )
    shown, next_cursor = cut_page(found, limit, key=lambda item: item.id)
    return Page(items=list(shown), next_cursor=next_cursor)
