"""Volunteers over HTTP: sign-up, approval, teams, records and the leaderboard. Thin: every
rule lives in `volunteers.service`."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from backend.auth.principal import AUTH_ERRORS, CurrentPrincipal
from backend.core.database import SessionDep
from backend.core.errors import ShanzhiError, problem_responses
from backend.core.pagination import (
    CursorParam,
    LimitParam,
    Page,
    cut_page,
    decode_cursor,
)
from backend.core.text import RegionCode
from volunteers.errors import VolunteerNotFound
from volunteers.models import VolunteerState
from volunteers.registrations import errors, records, schemas, service, teams
from volunteers.registrations.errors import (
    AlreadyApproved,
    CommunityInvalid,
    NoServiceRecord,
    PhoneRequired,
    RegistrationSuspended,
    TeamCommunityInvalid,
    TeamManageNotAllowed,
    TeamMemberNotApproved,
    TeamNameTaken,
)

router = APIRouter()


RegionQuery = Annotated[
    RegionCode | None,
    Query(
        description="Only this region (and below), e.g. `gz.tianhe.shipai.gangding`.",
    ),
]


MonthQuery = Annotated[
    str | None,
    Query(
        pattern=r"^[12][0-9]{3}-(0[1-9]|1[0-2])$",
        description="`YYYY-MM` (China time); default: this month.",
    ),
]


def _created_or_replayed(
    model: type[Any], what: str, *errors: type[ShanzhiError]
) -> dict[int | str, dict[str, Any]]:
    responses = problem_responses(*errors)
    responses[200] = {
        "model": model,
        "description": f"A retry: the {what} there was already, answered again.",
    }
    return responses


# --- the volunteer's side --------------------------------------------------------------------


@router.post(
    "/volunteers",
    operation_id="sign_up_volunteer",
    summary="Sign up as a volunteer of my community",
    tags=["volunteers"],
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.VolunteerProfile,
    responses=_created_or_replayed(
        schemas.VolunteerProfile,
        "registration",
        *AUTH_ERRORS,
        PhoneRequired,
        CommunityInvalid,
        AlreadyApproved,
        RegistrationSuspended,
    ),
)
async def sign_up_volunteer(
    body: schemas.VolunteerSignUp,
    response: Response,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> schemas.VolunteerProfile:
    """Apply to volunteer with your real name, skills, when you are free and your home
    community; that community's staff approve it (a volunteer number is issued) or reject it
    with a reason. Bind your phone first (`POST /v1/me/phone`).

    Idempotent without a key, since a user has one registration: sending the same answers
    again while pending answers the same registration (200); other answers while pending
    replace the application (200); after a rejection they go back for a new review (200,
    `pending`). An approved or suspended volunteer cannot sign up again (409).
    """
    outcome = await service.sign_up(session, principal.user, body)
    if not outcome.created:
        response.status_code = status.HTTP_200_OK
    return await service.profile(session, outcome.volunteer)


@router.get(
    "/volunteers/me",
    operation_id="get_my_volunteer_profile",
    summary="My volunteer registration, teams, hours and points",
    tags=["volunteers"],
    response_model=schemas.VolunteerProfile,
    responses=problem_responses(*errors.GET_MY_VOLUNTEER_PROFILE_ERRORS),
)
async def get_my_volunteer_profile(
    session: SessionDep, principal: CurrentPrincipal
) -> schemas.VolunteerProfile:
    """Your registration in whatever state it is (with the reason when rejected), the teams
    you are in, your verified service hours, the activities attended and your points."""
    volunteer = await records.my_volunteer(session, principal)
    return await service.profile(session, volunteer)


@router.get(
    "/volunteers/me/records",
    operation_id="list_my_service_records",
    summary="My verified service, newest first",
    tags=["volunteers"],
    response_model=Page[schemas.ServiceRecord],
    responses=problem_responses(*errors.LIST_MY_SERVICE_RECORDS_ERRORS),
)
async def list_my_service_records(
    session: SessionDep,
    principal: CurrentPrincipal,
    cursor: CursorParam = None,
    limit: LimitParam = 20,
) -> Page[schemas.ServiceRecord]:
    """Each activity where your attendance was verified: when you checked in and out, the
    minutes credited, the points paid, and which community organised (and certifies) it."""
    volunteer = await records.my_volunteer(session, principal)
    found = await records.my_records(
        session, volunteer, after=decode_cursor(cursor), limit=limit + 1
    )
    page, next_cursor = cut_page(found, limit)
    return Page(items=list(page), next_cursor=next_cursor)


@router.get(
    "/volunteers/leaderboard",
    operation_id="get_volunteer_leaderboard",
    summary="Service hours leaderboard of a community for a month",
    tags=["volunteers"],
    response_model=schemas.Leaderboard,
    responses=problem_responses(*errors.GET_VOLUNTEER_LEADERBOARD_ERRORS),
)
async def get_volunteer_leaderboard(
    session: SessionDep,
    principal: CurrentPrincipal,
    community: Annotated[
        RegionCode | None,
        Query(
            description="A community's code; default: your home community.",
        ),
    ] = None,
    month: MonthQuery = None,
) -> schemas.Leaderboard:
    """The 50 volunteers with the most verified minutes that month in activities the
    community organised, with masked names, and your own place when you served there."""
    return await records.leaderboard(session, principal, community=community, month=month)


# --- staff: review ---------------------------------------------------------------------------


@router.get(
    "/staff/volunteers",
    operation_id="list_staff_volunteers",
    summary="Volunteers of my communities, newest first",
    tags=["staff"],
    response_model=Page[schemas.StaffVolunteer],
    responses=problem_responses(*errors.LIST_STAFF_VOLUNTEERS_ERRORS),
)
async def list_staff_volunteers(
    session: SessionDep,
    principal: CurrentPrincipal,
    state: Annotated[
        VolunteerState | None, Query(description="Only registrations in this state.")
    ] = None,
    community: RegionQuery = None,
    cursor: CursorParam = None,
    limit: LimitParam = 20,
) -> Page[schemas.StaffVolunteer]:
    """Registrations whose home community lies within your regions (community staff, grid
    workers and admins above them), e.g. `state=pending` to review. Phones are masked."""
    found = await service.staff_volunteers(
        session,
        principal,
        state=state,
        community=community,
        after=decode_cursor(cursor),
        limit=limit + 1,
    )
    page, next_cursor = cut_page(found, limit)
    return Page(items=list(page), next_cursor=next_cursor)


@router.get(
    "/staff/volunteers/{volunteer_id}",
    operation_id="get_staff_volunteer",
    summary="Read a volunteer of my communities",
    tags=["staff"],
    response_model=schemas.StaffVolunteerDetail,
    responses=problem_responses(*errors.GET_STAFF_VOLUNTEER_ERRORS),
)
async def get_staff_volunteer(
    volunteer_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> schemas.StaffVolunteerDetail:
    """One registration of your regions with the teams the volunteer is in; anyone else's
    does not exist (404)."""
    volunteer = await service.volunteer_for_staff(session, principal, volunteer_id)
    return await service.staff_volunteer_detail(session, volunteer)


@router.post(
    "/staff/volunteers/{volunteer_id}/approve",
    operation_id="approve_volunteer",
    summary="Approve a volunteer and issue the volunteer number",
    tags=["staff"],
    response_model=schemas.StaffVolunteerDetail,
    responses=problem_responses(*errors.APPROVE_VOLUNTEER_ERRORS),
)
async def approve_volunteer(
    volunteer_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> schemas.StaffVolunteerDetail:
    """Approve a pending or rejected registration (or reinstate a suspended volunteer): they
    may enrol from now on. The first approval issues the number, e.g. `V2026-0000123`.

    Community staff of the home community, or admins above it; a grid worker may read but
    not decide (403). Approving an approved volunteer again changes nothing, so a retry is
    safe.
    """
    volunteer = await service.approve(session, principal, volunteer_id)
    return await service.staff_volunteer_detail(session, volunteer)


@router.post(
    "/staff/volunteers/{volunteer_id}/reject",
    operation_id="reject_volunteer",
    summary="Reject a volunteer's registration with a reason",
    tags=["staff"],
    response_model=schemas.StaffVolunteerDetail,
    responses=problem_responses(*errors.REJECT_VOLUNTEER_ERRORS),
)
async def reject_volunteer(
    volunteer_id: uuid.UUID,
    body: schemas.ReviewReason,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> schemas.StaffVolunteerDetail:
    """Reject a pending registration; the volunteer sees the reason and may sign up again.
    A retry keeps it rejected; an approved or suspended volunteer cannot be rejected (409:
    suspend instead)."""
    volunteer = await service.reject(session, principal, volunteer_id, body.reason)
    return await service.staff_volunteer_detail(session, volunteer)


@router.post(
    "/staff/volunteers/{volunteer_id}/suspend",
    operation_id="suspend_volunteer",
    summary="Suspend an approved volunteer",
    tags=["staff"],
    response_model=schemas.StaffVolunteerDetail,
    responses=problem_responses(*errors.SUSPEND_VOLUNTEER_ERRORS),
)
async def suspend_volunteer(
    volunteer_id: uuid.UUID,
    body: schemas.ReviewReason,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> schemas.StaffVolunteerDetail:
    """Stop an approved volunteer from enrolling, with a reason they see; their number and
    service record stay. Approving reinstates them. Suspending again changes nothing."""
    volunteer = await service.suspend(session, principal, volunteer_id, body.reason)
    return await service.staff_volunteer_detail(session, volunteer)


class CsvResponse(Response):
    media_type = "text/csv"
    charset = "utf-8"


@router.get(
    "/staff/volunteers/{volunteer_id}/service-record.csv",
    operation_id="export_service_record",
    summary="Export the service record my communities certify for a volunteer (CSV)",
    tags=["staff"],
    # The plain class has no media type of its own, so the errors stay problem+json only.
    response_class=Response,
    responses={
        200: {
            "description": "The record as CSV (UTF-8 with a byte-order mark; China time): the "
            "volunteer's number and name, one row per activity, the total, and the "
            "certifying communities with the time of export.",
            "content": {
                "text/csv": {
                    "schema": {"type": "string"},
                    "example": "\ufeff志愿服务记录证明\r\n志愿者编号,V2026-0000123\r\n"
                    "姓名,陈明\r\n\r\n" + ",".join(records.RECORD_COLUMNS) + "\r\n"
                    "岗顶社区夜间治安巡逻,治安巡逻,岗顶社区,2026-11-21,2026-11-21 19:56,"
                    "2026-11-21 22:01,120\r\n合计,1 次活动,,,,2.0 小时,120\r\n",
                }
            },
        },
        **problem_responses(*errors.STAFF_ERRORS, NoServiceRecord),
    },
)
async def export_service_record(
    volunteer_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> Response:
    """Whoever organises records, whoever records certifies (Ministry of Civil Affairs Order
    No. 67): the volunteer's verified service in activities organised within your regions
    only, wherever the volunteer lives. Community staff and admins; with nothing of yours
    to certify the volunteer does not exist here (404)."""
    record = await records.service_record_csv(session, principal, volunteer_id)
    filename = f"service-record-{record.volunteer.number or record.volunteer.id}.csv"
    return CsvResponse(
        content=record.csv,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


# --- staff: teams ----------------------------------------------------------------------------


@router.post(
    "/staff/teams",
    operation_id="create_team",
    summary="Form a team in a community",
    tags=["staff"],
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.TeamDetail,
    responses=_created_or_replayed(
        schemas.TeamDetail,
        "team",
        *AUTH_ERRORS,
        TeamManageNotAllowed,
        TeamCommunityInvalid,
        VolunteerNotFound,
        TeamMemberNotApproved,
        TeamNameTaken,
    ),
)
async def create_team(
    body: schemas.TeamCreate,
    response: Response,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> schemas.TeamDetail:
    """A "group defense and co-governance" team of a community where you are community staff
    (or admin above it), optionally with a leader, who joins as its first member. Names are
    unique per community (409). Sending the same request again answers the team it made
    (200), so a retry is safe."""
    outcome = await teams.create_team(session, principal, body)
    if not outcome.created:
        response.status_code = status.HTTP_200_OK
    return await teams.team_detail(session, outcome.team)


@router.get(
    "/staff/teams",
    operation_id="list_teams",
    summary="Teams of my communities, newest first",
    tags=["staff"],
    response_model=Page[schemas.TeamOut],
    responses=problem_responses(*errors.LIST_TEAMS_ERRORS),
)
async def list_teams(
    session: SessionDep,
    principal: CurrentPrincipal,
    community: RegionQuery = None,
    cursor: CursorParam = None,
    limit: LimitParam = 20,
) -> Page[schemas.TeamOut]:
    """The teams of communities within your regions, with their leader and size."""
    found = await teams.staff_teams(
        session, principal, community=community, after=decode_cursor(cursor), limit=limit + 1
    )
    page, next_cursor = cut_page(found, limit)
    return Page(items=list(page), next_cursor=next_cursor)


@router.get(
    "/staff/teams/{team_id}",
    operation_id="get_team",
    summary="Read a team with its members",
    tags=["staff"],
    response_model=schemas.TeamDetail,
    responses=problem_responses(*errors.GET_TEAM_ERRORS),
)
async def get_team(
    team_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> schemas.TeamDetail:
    """A team of your regions with every member (the leader first); elsewhere it does not
    exist (404)."""
    team = await teams.team_for_staff(session, principal, team_id)
    return await teams.team_detail(session, team)


@router.post(
    "/staff/teams/{team_id}/members",
    operation_id="add_team_member",
    summary="Add a volunteer to a team",
    tags=["staff"],
    response_model=schemas.TeamDetail,
    responses=problem_responses(*errors.ADD_TEAM_MEMBER_ERRORS),
)
async def add_team_member(
    team_id: uuid.UUID,
    body: schemas.TeamMemberAdd,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> schemas.TeamDetail:
    """Add an approved volunteer of your regions (404 for one elsewhere). Adding a member
    again changes nothing, so a retry is safe."""
    team = await teams.add_member(session, principal, team_id, body.volunteer_id)
    return await teams.team_detail(session, team)


@router.delete(
    "/staff/teams/{team_id}/members/{volunteer_id}",
    operation_id="remove_team_member",
    summary="Take a volunteer off a team",
    tags=["staff"],
    response_model=schemas.TeamDetail,
    responses=problem_responses(*errors.REMOVE_TEAM_MEMBER_ERRORS),
)
async def remove_team_member(
    team_id: uuid.UUID,
    volunteer_id: uuid.UUID,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> schemas.TeamDetail:
    """Remove a member; removing the leader leaves the team without one. Removing someone
    who is not a member changes nothing, so a retry is safe."""
    team = await teams.remove_member(session, principal, team_id, volunteer_id)
    return await teams.team_detail(session, team)


@router.put(
    "/staff/teams/{team_id}/leader",
    operation_id="set_team_leader",
    summary="Choose a team's leader",
    tags=["staff"],
    response_model=schemas.TeamDetail,
    responses=problem_responses(*errors.SET_TEAM_LEADER_ERRORS),
)
async def set_team_leader(
    team_id: uuid.UUID,
    body: schemas.TeamLeaderSet,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> schemas.TeamDetail:
    """Make an approved member the leader (they can then run check-in for the team's
    activities), or `null` for none. Setting the same leader again changes nothing."""
    team = await teams.set_leader(session, principal, team_id, body.volunteer_id)
    return await teams.team_detail(session, team)
