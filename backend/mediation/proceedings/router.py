"""Mediation proceedings over HTTP: sessions, minutes, the agreement and the outcome.

Thin: every rule lives in `backend.mediation.proceedings`.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Response, status

from backend.auth.principal import CurrentPrincipal
from backend.core.database import SessionDep
from backend.core.errors import ShanzhiError, problem_responses
from backend.core.idempotency import created_or_replayed, replayable
from backend.core.pagination import (
    CursorParam,
    LimitParam,
    Page,
    cut_page,
    decode_cursor,
)
from backend.mediation.proceedings import errors, schemas, service
from backend.mediation.proceedings.errors import (
    SessionClash,
    SessionPlaceRequired,
    SessionTimeInvalid,
)

router = APIRouter(tags=["mediation"])


# Steps that write the case's timeline may meet a concurrent change of the case.


def _responses(
    *errors: type[ShanzhiError], replay: type[Any] | None = None
) -> dict[int | str, dict[str, Any]]:
    if replay is not None:
        return replayable(errors, replay, "A retry: what an earlier identical request made")
    responses = problem_responses(*errors)
    return responses


# --- sessions ------------------------------------------------------------------------------


@router.post(
    "/mediations/{mediation_id}/sessions",
    operation_id="schedule_mediation_session",
    summary="Schedule a mediation session (the mediator)",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.SessionOut,
    responses=_responses(
        *errors.MEDIATOR_ERRORS,
        SessionPlaceRequired,
        SessionTimeInvalid,
        SessionClash,
        *errors.CASE_ERRORS,
        replay=schemas.SessionOut,
    ),
)
async def schedule_mediation_session(
    mediation_id: uuid.UUID,
    body: schemas.SessionCreate,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> Response:
    """Schedule a session, in person (a place is required) or online (a meeting link or a
    note on how to join). Only the mediator of the case, while the mediation is underway;
    the first session starts the case (the mediation is then `in_session`). The parties see
    it in their list of sessions.

    Idempotent without a key: sending the same time, mode and place again answers the
    session already scheduled (200, `Idempotent-Replay: true`); another session at the same
    moment is a clash (409) — change the existing one instead.
    """
    scheduled = await service.schedule_session(
        session,
        principal,
        mediation_id,
        starts_at=body.starts_at,
        mode=body.mode,
        place=body.place,
    )
    view = (await service.session_views(session, scheduled.seen, [scheduled.item]))[0]
    return created_or_replayed(view, replayed=scheduled.replayed)


@router.get(
    "/mediations/{mediation_id}/sessions",
    operation_id="list_mediation_sessions",
    summary="List the sessions of a mediation",
    response_model=Page[schemas.SessionOut],
    responses=problem_responses(*errors.LIST_MEDIATION_SESSIONS_ERRORS),
)
async def list_mediation_sessions(
    mediation_id: uuid.UUID,
    session: SessionDep,
    principal: CurrentPrincipal,
    cursor: CursorParam = None,
    limit: LimitParam = 20,
) -> Page[schemas.SessionOut]:
    """The sessions of a mediation, the most recently scheduled first: time, mode, place,
    state and which parties attended.

    For its parties, its mediator and the admins of regions above it (404 for anyone
    else). The minutes are private: only the mediator and the admins get them; for the
    parties `minutes` is always null.
    """
    seen, found = await service.list_sessions(
        session, principal, mediation_id, after=decode_cursor(cursor), limit=limit + 1
    )
    page, next_cursor = cut_page(found, limit)
    return Page(items=await service.session_views(session, seen, page), next_cursor=next_cursor)


@router.patch(
    "/mediations/{mediation_id}/sessions/{session_id}",
    operation_id="update_mediation_session",
    summary="Reschedule or cancel a mediation session (the mediator)",
    response_model=schemas.SessionOut,
    responses=problem_responses(*errors.UPDATE_MEDIATION_SESSION_ERRORS),
)
async def update_mediation_session(
    mediation_id: uuid.UUID,
    session_id: uuid.UUID,
    body: schemas.SessionUpdate,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> schemas.SessionOut:
    """Move a scheduled session (time, mode, place) while the mediation is underway, or
    cancel it with `state: "cancelled"` (also after the end, for one that never took
    place). Only the mediator of the case. A held or cancelled session cannot be moved.

    Idempotent: the same change again, or cancelling a cancelled session, answers the
    session as it is.
    """
    seen, item = await service.update_session(
        session,
        principal,
        mediation_id,
        session_id,
        changes=body.model_dump(exclude_unset=True),
    )
    return (await service.session_views(session, seen, [item]))[0]


@router.post(
    "/mediations/{mediation_id}/sessions/{session_id}/record",
    operation_id="record_mediation_session",
    summary="Record attendance and the private minutes of a session (the mediator)",
    response_model=schemas.SessionOut,
    responses=problem_responses(*errors.RECORD_MEDIATION_SESSION_ERRORS),
)
async def record_mediation_session(
    mediation_id: uuid.UUID,
    session_id: uuid.UUID,
    body: schemas.SessionRecord,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> schemas.SessionOut:
    """Record which parties attended and the minutes, once the session has started: it is
    then `held`. Only the mediator of the case. The minutes are seen by the mediator and the
    supervising admins only, never by the parties, and never appear on the timeline.

    Idempotent: the same record again answers the held session; minutes once recorded are
    not rewritten (409).
    """
    seen, item = await service.record_session(
        session,
        principal,
        mediation_id,
        session_id,
        attended=body.attended,
        minutes=body.minutes,
    )
    return (await service.session_views(session, seen, [item]))[0]


# --- the agreement and the outcome ---------------------------------------------------------


@router.get(
    "/mediations/{mediation_id}/outcome",
    operation_id="get_mediation_outcome",
    summary="Read the agreement on the table, or how the mediation ended",
    response_model=schemas.OutcomeOut,
    responses=problem_responses(*errors.GET_MEDIATION_OUTCOME_ERRORS),
)
async def get_mediation_outcome(
    mediation_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> schemas.OutcomeOut:
    """The agreement proposed (text, version, judicial confirmation, which parties have
    confirmed the current version), whether the caller still has to confirm it, and, when
    it ended without agreement, the referral with a description of where to turn.

    For its parties, its mediator and the admins of regions above it (404 for anyone else).
    """
    seen = await service.read_outcome(session, principal, mediation_id)
    return await service.outcome_view(session, seen)


@router.put(
    "/mediations/{mediation_id}/agreement",
    operation_id="propose_mediation_agreement",
    summary="Put an agreement to the parties (the mediator)",
    response_model=schemas.OutcomeOut,
    responses=problem_responses(*errors.PROPOSE_MEDIATION_AGREEMENT_ERRORS),
)
async def propose_mediation_agreement(
    mediation_id: uuid.UUID,
    body: schemas.AgreementIn,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> schemas.OutcomeOut:
    """Propose the agreement text, optionally for judicial confirmation (司法确认). Only the
    mediator of the case, while the mediation is underway; the mediation waits for every
    party to confirm (`agreement_pending`).

    A changed text or flag is a new version: confirmations of earlier versions no longer
    count, and each party must confirm again. Sending the same proposal again changes
    nothing (a safe retry).
    """
    seen = await service.propose_agreement(
        session,
        principal,
        mediation_id,
        text=body.text,
        judicial_confirmation=body.judicial_confirmation,
    )
    return await service.outcome_view(session, seen)


@router.post(
    "/mediations/{mediation_id}/agreement/confirm",
    operation_id="confirm_mediation_agreement",
    summary="Confirm the agreement as a party",
    response_model=schemas.OutcomeOut,
    responses=problem_responses(*errors.CONFIRM_MEDIATION_AGREEMENT_ERRORS),
)
async def confirm_mediation_agreement(
    mediation_id: uuid.UUID,
    body: schemas.ConfirmIn,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> schemas.OutcomeOut:
    """Confirm the agreement version you read. Only the parties themselves (the applicant
    and each respondent who consented) — not the mediator, not an admin.

    When every party has confirmed the current version, the mediation is concluded and the
    case resolved. If the text changed since you read it, 409 `mediation.agreement_changed`
    names the current version: read it and confirm that. Confirming again answers the same.
    """
    seen = await service.confirm_agreement(session, principal, mediation_id, version=body.version)
    return await service.outcome_view(session, seen)


@router.post(
    "/mediations/{mediation_id}/no-agreement",
    operation_id="end_mediation_without_agreement",
    summary="End a mediation without agreement, with a referral (the mediator)",
    response_model=schemas.OutcomeOut,
    responses=problem_responses(*errors.END_MEDIATION_WITHOUT_AGREEMENT_ERRORS),
)
async def end_mediation_without_agreement(
    mediation_id: uuid.UUID,
    body: schemas.NoAgreementIn,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> schemas.OutcomeOut:
    """End the mediation without agreement and tell the parties where to turn (court,
    labour arbitration, ...): the case is resolved with that outcome, and sessions still
    ahead are cancelled. Only the mediator of the case, while the mediation is underway.

    Idempotent: the same referral and note again answers the ended mediation.
    """
    seen = await service.end_without_agreement(
        session, principal, mediation_id, referral=body.referral, note=body.note
    )
    return await service.outcome_view(session, seen)
