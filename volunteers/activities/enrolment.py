"""Enrolment: places, the waitlist, and giving a place up."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.auth.principal import Principal
from backend.core.clock import now
from volunteers.activities.errors import (
    EnrolmentClosed,
    EnrolmentNotCancellable,
    EnrolmentNotFound,
    TeamOnly,
    TooLateToCancel,
)
from volunteers.activities.service import (
    BY_VOLUNTEER,
    HOLDING,
    STATE_ZH,
    local,
    lock_activity,
    promote,
)
from volunteers.auth import (
    in_team,
    own_volunteer,
)
from volunteers.errors import ActivityNotFound
from volunteers.models import (
    ActivityState,
    Enrolment,
    EnrolmentState,
    Team,
    Volunteer,
)

# --- the waitlist --------------------------------------------------------------------------


# --- enrolment -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Enrolled:
    enrolment: Enrolment
    replayed: bool


async def enrol(session: AsyncSession, principal: Principal, activity_id: uuid.UUID) -> Enrolled:
    """Take a place, or a place in the queue when none is left.

    Only approved volunteers, only while the activity is published and has not started,
    and for a team's activity only its members. Idempotent: a volunteer who holds a place
    or waits for one gets that enrolment back; one who cancelled joins again at the end
    of the queue.
    """
    volunteer = await own_volunteer(session, principal)
    # Every enrolment of this activity queues here: the counters cannot oversell.
    activity = await lock_activity(session, activity_id)
    if activity is None or activity.state == ActivityState.draft:
        raise ActivityNotFound()
    enrolment = (
        await session.execute(
            select(Enrolment)
            .where(
                col(Enrolment.activity_id) == activity.id,
                col(Enrolment.volunteer_id) == volunteer.id,
            )
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    if enrolment is not None and enrolment.state in HOLDING:
        return Enrolled(enrolment, replayed=True)
    if activity.team_id is not None and not await in_team(session, volunteer.id, activity.team_id):
        team = await session.get(Team, activity.team_id)
        raise TeamOnly(team=team.name if team else "")
    at = now()
    if activity.state != ActivityState.published:
        raise _closed(ActivityState(activity.state))
    if at >= activity.starts_at:
        raise EnrolmentClosed(why="has already started", why_zh="已经开始")
    state = (
        EnrolmentState.enrolled
        if activity.enrolled < activity.capacity
        else EnrolmentState.waitlisted
    )
    if enrolment is None:
        enrolment = Enrolment(
            activity_id=activity.id,
            volunteer_id=volunteer.id,
            state=state,
            queued_at=at,
            created_at=at,
        )
        session.add(enrolment)
    else:
        # Back after cancelling: at the end of the queue, as anyone joining now.
        enrolment.state = state
        enrolment.queued_at = at
        enrolment.promoted_at = None
        enrolment.cancelled_at = None
        enrolment.cancelled_by = None
        enrolment.updated_at = at
    if state is EnrolmentState.enrolled:
        activity.enrolled += 1
    else:
        activity.waitlisted += 1
    await session.flush()
    return Enrolled(enrolment, replayed=False)


def _closed(state: ActivityState) -> EnrolmentClosed:
    if state is ActivityState.cancelled:
        return EnrolmentClosed(why="was cancelled", why_zh="已取消")
    return EnrolmentClosed(why="is over", why_zh="已结束")


async def cancel_enrolment(
    session: AsyncSession, principal: Principal, enrolment_id: uuid.UUID, *, cancel_hours: float
) -> Enrolment:
    """Give up a place (or leave the queue). A place can be given up until `cancel_hours`
    before the start and goes at once to the first in the queue; leaving the queue is
    possible until the activity ends. Cancelling a cancelled enrolment answers it as it is.
    """
    found = (
        await session.execute(
            select(col(Enrolment.activity_id))
            .join(Volunteer, col(Volunteer.id) == col(Enrolment.volunteer_id))
            .where(col(Enrolment.id) == enrolment_id, col(Volunteer.user_id) == principal.user_id)
        )
    ).scalar_one_or_none()
    if found is None:
        raise EnrolmentNotFound()
    activity = await lock_activity(session, found)
    assert activity is not None, "an enrolment's activity is never deleted"
    enrolment = (
        await session.execute(
            select(Enrolment)
            .where(col(Enrolment.id) == enrolment_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    state = EnrolmentState(enrolment.state)
    if state is EnrolmentState.cancelled:
        return enrolment
    activity_state = ActivityState(activity.state)
    if state is EnrolmentState.no_show or activity_state is not ActivityState.published:
        raise EnrolmentNotCancellable(state=activity_state.value, state_zh=STATE_ZH[activity_state])
    at = now()
    if state is EnrolmentState.enrolled:
        deadline = activity.starts_at - timedelta(hours=cancel_hours)
        if at > deadline:
            raise TooLateToCancel(
                deadline=deadline, hours=cancel_hours, deadline_local=local(deadline)
            )
    enrolment.state = EnrolmentState.cancelled
    enrolment.cancelled_by = BY_VOLUNTEER
    enrolment.cancelled_at = at
    enrolment.updated_at = at
    if state is EnrolmentState.enrolled:
        activity.enrolled -= 1
    else:
        activity.waitlisted -= 1
    await session.flush()
    if state is EnrolmentState.enrolled and activity.waitlisted > 0:
        await promote(session, activity, 1, at)
    return enrolment
