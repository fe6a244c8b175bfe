"""The proceedings of a mediation: sessions and their private minutes, the agreement every
party confirms, and the end without agreement with a referral.

Only the assigned mediator moves a mediation forward; the supervising admins may read
everything, the minutes included, but act on nothing here; the parties read the sessions
(without minutes) and confirm the agreement. Every write locks the mediation row first
(`visible_mediation(..., for_update=True)`), so two requests at once (two parties confirming,
a retry racing its original) are applied one after the other.

On the case: the first session scheduled starts it (`accepted -> in_progress`); an agreement
confirmed by all, or the end without agreement, resolves it. The other steps are `comment`
events with `data.step`. Timeline events never carry the minutes, the agreement text, the
outcome note (free text may hold anything) or contact details.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.auth.models import Role
from backend.auth.principal import Principal
from backend.cases import workflow
from backend.cases.models import CaseState
from backend.core.clock import now
from backend.core.pagination import keyset
from backend.mediation.auth import Seen, Viewer, visible_mediation
from backend.mediation.errors import MediationEnded
from backend.mediation.models import (
    OPEN_MEDIATION_STATES,
    Consent,
    Mediation,
    MediationParty,
    MediationSession,
    MediationState,
    PartyRole,
    Referral,
    SessionMode,
    SessionState,
)
from backend.mediation.proceedings import errors, schemas
from backend.mediation.proceedings.referrals import route_out

# A session is planned at most this far ahead (a mediation has weeks, not years).
SCHEDULE_HORIZON = timedelta(days=365)


# The states in which the mediator works the case.
UNDERWAY = (MediationState.assigned, MediationState.in_session, MediationState.agreement_pending)


# Who sees the minutes.
MINUTES_READERS = (Viewer.mediator, Viewer.supervisor)


PARTY_VIEWERS = (Viewer.applicant, Viewer.respondent)


# --- checks --------------------------------------------------------------------------------


def _require_mediator(seen: Seen) -> None:
    # Supervisors read but do not act here; the parties never act for the mediator.
    if seen.viewer is not Viewer.mediator:
        raise errors.MediatorOnly()


def _require_underway(mediation: Mediation) -> None:
    state = MediationState(mediation.state)
    if state in UNDERWAY:
        return
    if state in OPEN_MEDIATION_STATES:
        raise errors.MediationNotUnderway(state)
    raise MediationEnded(state)


def _mediator_actor(principal: Principal) -> workflow.Actor:
    return workflow.Actor(principal.user_id, Role.mediator.value)


def _touch(mediation: Mediation, at: datetime) -> None:
    mediation.updated_at = at
    mediation.version += 1


async def _parties(session: AsyncSession, case_id: uuid.UUID) -> list[MediationParty]:
    """Everyone named in the mediation (declined respondents too), applicant first."""
    rows = await session.execute(
        select(MediationParty)
        .where(col(MediationParty.case_id) == case_id)
        .order_by(col(MediationParty.role), col(MediationParty.created_at), col(MediationParty.id))
    )
    return list(rows.scalars())


def _taking_part(parties: Sequence[MediationParty]) -> list[MediationParty]:
    """The parties to the mediation itself: the applicant and the respondents who consented."""
    return [p for p in parties if p.consent == Consent.accepted]


async def _session_of(
    session: AsyncSession, case_id: uuid.UUID, session_id: uuid.UUID
) -> MediationSession:
    found = await session.execute(
        select(MediationSession).where(
            col(MediationSession.id) == session_id, col(MediationSession.case_id) == case_id
        )
    )
    item = found.scalar_one_or_none()
    if item is None:
        raise errors.SessionNotFound()
    return item


async def _scheduled_at(
    session: AsyncSession, case_id: uuid.UUID, starts_at: datetime
) -> list[MediationSession]:
    found = await session.execute(
        select(MediationSession).where(
            col(MediationSession.case_id) == case_id,
            col(MediationSession.state) == SessionState.scheduled.value,
            col(MediationSession.starts_at) == starts_at,
        )
    )
    return list(found.scalars())


def _check_start(starts_at: datetime, at: datetime) -> None:
    if not at < starts_at <= at + SCHEDULE_HORIZON:
        raise errors.SessionTimeInvalid()


def _session_event(step: str, item: MediationSession, **more: Any) -> dict[str, Any]:
    # Times and the mode only: the place may be a private address or a meeting password.
    return {
        "step": step,
        "session_id": str(item.id),
        "starts_at": item.starts_at.isoformat(),
        "mode": SessionMode(item.mode).value,
        **more,
    }


# --- sessions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scheduled:
    seen: Seen
    item: MediationSession
    replayed: bool


async def schedule_session(
    session: AsyncSession,
    principal: Principal,
    mediation_id: uuid.UUID,
    *,
    starts_at: datetime,
    mode: SessionMode,
    place: str | None,
) -> Scheduled:
    """Schedule a session; the first one starts the case and the mediation is in session.

    Idempotent without a key: a scheduled session of this mediation at the same moment with
    the same mode and place is the one an earlier try made, and is answered again (`replayed`);
    at the same moment with another mode or place it is a clash (409), to be changed with
    `update_session` instead.
    """
    seen = await visible_mediation(session, principal, mediation_id, for_update=True)
    _require_mediator(seen)
    mediation, case = seen.mediation, seen.case
    _require_underway(mediation)
    mode = SessionMode(mode)
    if mode is SessionMode.in_person and not place:
        raise errors.SessionPlaceRequired()
    at = now()
    # Checked before any query: a time out of range cannot even be sent to the database.
    _check_start(starts_at, at)
    for existing in await _scheduled_at(session, case.id, starts_at):
        if existing.mode == mode and existing.place == place:
            return Scheduled(seen, existing, replayed=True)
        raise errors.SessionClash(session_id=str(existing.id))

    item = MediationSession(
        case_id=case.id,
        starts_at=starts_at,
        mode=mode,
        place=place,
        state=SessionState.scheduled,
        attended=[],
        created_by=principal.user_id,
        created_at=at,
    )
    session.add(item)
    await session.flush()
    if mediation.state == MediationState.assigned:
        mediation.state = MediationState.in_session
        _touch(mediation, at)
    # The first session is when the case gets going: the step is on the `start` event.
    action = (
        workflow.Action.start
        if workflow.allowed(workflow.Action.start, CaseState(case.state))
        else workflow.Action.comment
    )
    await workflow.apply(
        session,
        case,
        action,
        _mediator_actor(principal),
        data=_session_event("session_scheduled", item),
    )
    await session.flush()
    return Scheduled(seen, item, replayed=False)


async def update_session(
    session: AsyncSession,
    principal: Principal,
    mediation_id: uuid.UUID,
    session_id: uuid.UUID,
    *,
    changes: dict[str, Any],
) -> tuple[Seen, MediationSession]:
    """Reschedule a scheduled session (`starts_at`, `mode`, `place`) while the mediation is
    underway, or cancel it (`state: cancelled`). Idempotent: the same change again, or
    cancelling a cancelled session, answers the session as it is."""
    seen = await visible_mediation(session, principal, mediation_id, for_update=True)
    _require_mediator(seen)
    item = await _session_of(session, seen.case.id, session_id)
    cancelling = changes.get("state") == SessionState.cancelled.value
    fields = {key: value for key, value in changes.items() if key != "state"}
    if cancelling and fields:
        raise errors.SessionChangeInvalid()
    at = now()
    if cancelling:
        if item.state == SessionState.cancelled:
            return seen, item
        if item.state != SessionState.scheduled:
            raise errors.SessionNotScheduled(state=SessionState(item.state).value)
        # A session can be called off even after the end (one that never took place).
        item.state = SessionState.cancelled
        item.updated_at = at
        await workflow.apply(
            session,
            seen.case,
            workflow.Action.comment,
            _mediator_actor(principal),
            data=_session_event("session_cancelled", item),
        )
        await session.flush()
        return seen, item

    _require_underway(seen.mediation)
    if item.state != SessionState.scheduled:
        raise errors.SessionNotScheduled(state=SessionState(item.state).value)
    starts_at: datetime = fields.get("starts_at", item.starts_at)
    mode = SessionMode(fields.get("mode", item.mode))
    place: str | None = fields.get("place", item.place)
    if (starts_at, mode, place) == (item.starts_at, SessionMode(item.mode), item.place):
        return seen, item
    if mode is SessionMode.in_person and not place:
        raise errors.SessionPlaceRequired()
    if starts_at != item.starts_at:
        _check_start(starts_at, at)
    for other in await _scheduled_at(session, seen.case.id, starts_at):
        if other.id != item.id:
            raise errors.SessionClash(session_id=str(other.id))
    item.starts_at, item.mode, item.place = starts_at, mode, place
    item.updated_at = at
    await workflow.apply(
        session,
        seen.case,
        workflow.Action.comment,
        _mediator_actor(principal),
        data=_session_event("session_rescheduled", item),
    )
    await session.flush()
    return seen, item


async def record_session(
    session: AsyncSession,
    principal: Principal,
    mediation_id: uuid.UUID,
    session_id: uuid.UUID,
    *,
    attended: Sequence[uuid.UUID],
    minutes: str,
) -> tuple[Seen, MediationSession]:
    """Record who of the parties came and the minutes: the session is held.

    Only once it has started; also after the mediation ended, for a session that took place
    before. Idempotent: the same record again answers the held session; a different one is
    refused (minutes are not rewritten).
    """
    seen = await visible_mediation(session, principal, mediation_id, for_update=True)
    _require_mediator(seen)
    item = await _session_of(session, seen.case.id, session_id)
    if item.state == SessionState.cancelled:
        raise errors.SessionNotScheduled(state=SessionState.cancelled.value)
    party_ids = {p.id for p in _taking_part(await _parties(session, seen.case.id))}
    present = list(dict.fromkeys(attended))
    if any(party_id not in party_ids for party_id in present):
        raise errors.AttendeeNotParty()
    present_ids = [str(party_id) for party_id in present]
    if item.state == SessionState.held:
        if set(item.attended) == set(present_ids) and item.minutes == minutes:
            return seen, item
        raise errors.SessionAlreadyRecorded()
    at = now()
    if at < item.starts_at:
        raise errors.SessionNotStarted()
    item.state = SessionState.held
    item.attended = present_ids
    item.minutes = minutes
    item.updated_at = at
    await workflow.apply(
        session,
        seen.case,
        workflow.Action.comment,
        _mediator_actor(principal),
        data=_session_event("session_held", item, attendees=len(present_ids)),
    )
    await session.flush()
    return seen, item


async def list_sessions(
    session: AsyncSession,
    principal: Principal,
    mediation_id: uuid.UUID,
    *,
    after: uuid.UUID | None,
    limit: int,
) -> tuple[Seen, list[MediationSession]]:
    """The mediation's sessions, newest scheduled first, for anyone who may see it."""
    seen = await visible_mediation(session, principal, mediation_id)
    query = select(MediationSession).where(col(MediationSession.case_id) == seen.case.id)
    query = keyset(query, col(MediationSession.id), after)
    found = await session.execute(query.limit(limit))
    return seen, list(found.scalars())


async def session_views(
    session: AsyncSession, seen: Seen, items: Sequence[MediationSession]
) -> list[schemas.SessionOut]:
    """The sessions as the viewer may see them: minutes only for the mediator and the
    supervising admins."""
    if not items:
        return []
    parties = {str(p.id): p for p in await _parties(session, seen.case.id)}
    private = seen.viewer in MINUTES_READERS
    return [
        schemas.SessionOut(
            id=item.id,
            mediation_id=item.case_id,
            starts_at=item.starts_at,
            mode=SessionMode(item.mode),
            place=item.place,
            state=SessionState(item.state),
            attended=[
                schemas.AttendeeOut(
                    party_id=parties[party_id].id,
                    role=PartyRole(parties[party_id].role),
                    name=parties[party_id].name,
                )
                for party_id in item.attended
                if party_id in parties
            ],
            minutes=item.minutes if private else None,
            created_at=item.created_at,
            updated_at=item.updated_at,
        )
        for item in items
    ]


# --- the agreement -------------------------------------------------------------------------


async def propose_agreement(
    session: AsyncSession,
    principal: Principal,
    mediation_id: uuid.UUID,
    *,
    text: str,
    judicial_confirmation: bool,
) -> Seen:
    """Put an agreement to the parties. A changed text (or judicial-confirmation flag) is a
    new version, and confirmations of earlier versions no longer count; the same proposal
    again changes nothing (so a retry is harmless)."""
    seen = await visible_mediation(session, principal, mediation_id, for_update=True)
    _require_mediator(seen)
    mediation = seen.mediation
    _require_underway(mediation)
    if (
        mediation.agreement_version > 0
        and mediation.agreement_text == text
        and mediation.judicial_confirmation == judicial_confirmation
    ):
        return seen
    at = now()
    mediation.agreement_text = text
    mediation.judicial_confirmation = judicial_confirmation
    mediation.agreement_version += 1
    mediation.state = MediationState.agreement_pending
    _touch(mediation, at)
    await workflow.apply(
        session,
        seen.case,
        workflow.Action.comment,
        _mediator_actor(principal),
        data={"step": "agreement_proposed", "version": mediation.agreement_version},
    )
    await session.flush()
    return seen


async def confirm_agreement(
    session: AsyncSession, principal: Principal, mediation_id: uuid.UUID, *, version: int
) -> Seen:
    """A party confirms the version of the agreement they read. When every party (the
    applicant and each respondent who consented) has confirmed the current version, the
    mediation is concluded and the case resolved. Confirming again answers the same."""
    seen = await visible_mediation(session, principal, mediation_id, for_update=True)
    party = seen.party
    if seen.viewer not in PARTY_VIEWERS or party is None or party.consent != Consent.accepted:
        raise errors.PartyOnly()
    mediation = seen.mediation
    state = MediationState(mediation.state)
    current = mediation.agreement_version
    if state is MediationState.concluded:
        if version != current:
            raise errors.AgreementChanged(current=current)
        return seen
    if state not in OPEN_MEDIATION_STATES:
        raise MediationEnded(state)
    if state is not MediationState.agreement_pending or current == 0:
        raise errors.NoAgreementProposed()
    if version != current:
        raise errors.AgreementChanged(current=current)
    if party.confirmed_version == current:
        return seen
    at = now()
    party.confirmed_version = current
    party.confirmed_at = at
    await session.flush()
    await workflow.apply(
        session,
        seen.case,
        workflow.Action.comment,
        workflow.Actor(principal.user_id, workflow.RESIDENT),
        data={
            "step": "agreement_confirmed",
            "version": current,
            "party_role": PartyRole(party.role).value,
        },
    )
    taking_part = _taking_part(await _parties(session, seen.case.id))
    if all(p.confirmed_version == current for p in taking_part):
        mediation.state = MediationState.concluded
        mediation.ended_at = at
        _touch(mediation, at)
        await workflow.apply(
            session,
            seen.case,
            workflow.Action.resolve,
            workflow.Actor(None, workflow.SYSTEM),
            data={
                "outcome": "agreement",
                "agreement_version": current,
                "judicial_confirmation": mediation.judicial_confirmation,
            },
            changes={"resolved_at": at},
        )
        await _call_off_upcoming(session, mediation, at)
    await session.flush()
    return seen


async def end_without_agreement(
    session: AsyncSession,
    principal: Principal,
    mediation_id: uuid.UUID,
    *,
    referral: Referral,
    note: str | None,
) -> Seen:
    """The mediator ends the mediation without agreement and refers the dispute elsewhere;
    the case is resolved with that outcome. Idempotent: the same referral and note again
    answers the ended mediation; anything else after the end is refused."""
    seen = await visible_mediation(session, principal, mediation_id, for_update=True)
    _require_mediator(seen)
    mediation = seen.mediation
    if (
        mediation.state == MediationState.no_agreement
        and mediation.referral == referral
        and mediation.outcome_note == note
    ):
        return seen
    _require_underway(mediation)
    at = now()
    mediation.state = MediationState.no_agreement
    mediation.referral = Referral(referral)
    mediation.outcome_note = note
    mediation.ended_at = at
    _touch(mediation, at)
    await workflow.apply(
        session,
        seen.case,
        workflow.Action.resolve,
        _mediator_actor(principal),
        data={"outcome": "no_agreement", "referral": Referral(referral).value},
        changes={"resolved_at": at},
    )
    await _call_off_upcoming(session, mediation, at)
    await session.flush()
    return seen


async def _call_off_upcoming(session: AsyncSession, mediation: Mediation, at: datetime) -> None:
    """Sessions still ahead when the mediation ends are cancelled, so nobody turns up; those
    already past stay scheduled until the mediator records them."""
    found = await session.execute(
        select(MediationSession).where(
            col(MediationSession.case_id) == mediation.case_id,
            col(MediationSession.state) == SessionState.scheduled.value,
            col(MediationSession.starts_at) > at,
        )
    )
    for item in found.scalars():
        item.state = SessionState.cancelled
        item.updated_at = at


async def read_outcome(
    session: AsyncSession, principal: Principal, mediation_id: uuid.UUID
) -> Seen:
    """The mediation as far as its outcome goes, for anyone who may see it."""
    return await visible_mediation(session, principal, mediation_id)


async def outcome_view(session: AsyncSession, seen: Seen) -> schemas.OutcomeOut:
    mediation = seen.mediation
    version = mediation.agreement_version
    agreement: schemas.AgreementOut | None = None
    awaiting_you = False
    if version > 0 and mediation.agreement_text is not None:
        taking_part = _taking_part(await _parties(session, seen.case.id))
        confirmations = [
            schemas.ConfirmationOut(
                party_id=p.id,
                role=PartyRole(p.role),
                name=p.name,
                confirmed=p.confirmed_version == version,
                confirmed_at=p.confirmed_at if p.confirmed_version == version else None,
            )
            for p in taking_part
        ]
        agreement = schemas.AgreementOut(
            version=version,
            text=mediation.agreement_text,
            judicial_confirmation=mediation.judicial_confirmation,
            confirmations=confirmations,
            confirmed_by_all=all(c.confirmed for c in confirmations),
        )
        awaiting_you = (
            mediation.state == MediationState.agreement_pending
            and seen.viewer in PARTY_VIEWERS
            and seen.party is not None
            and any(c.party_id == seen.party.id and not c.confirmed for c in confirmations)
        )
    return schemas.OutcomeOut(
        mediation_id=mediation.case_id,
        state=MediationState(mediation.state),
        agreement=agreement,
        awaiting_your_confirmation=awaiting_you,
        referral=route_out(mediation.referral) if mediation.referral else None,
        note=mediation.outcome_note,
        ended_at=mediation.ended_at,
    )
