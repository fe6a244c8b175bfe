"""Mediation over HTTP: the request, invitations and consent, the case as each side sees it.

Thin: every rule lives in `backend.mediation.service`.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Response, status

from backend.auth.principal import AUTH_ERRORS, CurrentPrincipal, RateLimit
from backend.cases.errors import IdempotencyConflict, OutsideServiceArea
from backend.core.database import SessionDep
from backend.core.deps import GridMapDep, PersonalDataDep, SettingsDep, StoreDep
from backend.core.errors import problem_responses
from backend.core.i18n import negotiate
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
from backend.mediation.models import MediationState
from backend.mediation.requests import errors, invitations, queries, schemas, service
from backend.mediation.requests.errors import (
    DisputeTypeUnavailable,
    PhoneRequired,
    PreferredStudioInvalid,
    RespondentDuplicate,
    RespondentIsYou,
)
from backend.storage.errors import CLAIM_ERRORS

router = APIRouter(tags=["mediation"])


_REQUEST_ERRORS = (
    *AUTH_ERRORS,
    RateLimited,
    *KEY_ERRORS,
    IdempotencyConflict,
    PhoneRequired,
    RespondentIsYou,
    RespondentDuplicate,
    OutsideServiceArea,
    DisputeTypeUnavailable,
    PreferredStudioInvalid,
    *CLAIM_ERRORS,
)


IdempotencyKey = Annotated[
    Verbatim | None,
    Header(
        alias="Idempotency-Key",
        description="Required. 1–128 visible ASCII characters, new for each request and the "
        "same on every retry of it (e.g. a UUID made when the applicant taps submit).",
    ),
]


InvitationCode = Annotated[
    Verbatim,
    Path(
        min_length=1,
        max_length=32,
        description="The 10-character invitation code the applicant forwarded (any case; "
        "spaces and dashes are ignored).",
    ),
]


RequestLimit = Annotated[None, RateLimit("mediation_request", "10/hour")]


# Codes are secrets: guessing them one request at a time must be hopeless.
InvitationLimit = Annotated[None, RateLimit("mediation_invitation", "20/minute")]


def _request_responses() -> dict[int | str, dict[str, Any]]:
    return replayable(
        _REQUEST_ERRORS,
        schemas.MediationCreated,
        "A retry: the mediation this Idempotency-Key made before, without invitation codes",
    )


@router.post(
    "/mediations",
    operation_id="request_mediation",
    summary="Request mediation of a dispute (one-click mediation)",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.MediationCreated,
    responses=_request_responses(),
)
async def request_mediation(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    personal_data: PersonalDataDep,
    grid_map: GridMapDep,
    store: StoreDep,
    principal: CurrentPrincipal,
    body: schemas.MediationRequest,
    _: RequestLimit,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Ask for mediation: the dispute type, what happened, what you ask for, where, evidence
    (up to 9 uploads), your name, and the other side (1–5 respondents with name and phone).

    Needs a bound phone (it is how the mediator reaches you). Each respondent's phone is
    stored encrypted and never shown to you again. The answer carries, this once, each
    respondent's **invitation code** and a message to forward in WeChat; they accept or
    decline in the app before the consent deadline.

    Idempotent: a retry with the same `Idempotency-Key` and body answers the same mediation
    (200, `Idempotent-Replay: true`) — but without the codes, which are kept only as hashes
    (`invitations` is empty and `hint` says to re-issue them). The same key with another
    body is refused (409).
    """
    requested = await service.request_mediation(
        session,
        grid_map=grid_map,
        store=store,
        personal_data=personal_data,
        principal=principal,
        body=body,
        idempotency_key=idempotency_key,
        consent_hours=settings.mediation_consent_hours,
        time_limit_days=settings.mediation_time_limit_days,
        language=negotiate(request.headers.get("accept-language")),
    )
    return created_or_replayed(requested.mediation, replayed=requested.replayed)


@router.get(
    "/me/mediations",
    operation_id="list_my_mediations",
    summary="List my mediations",
    response_model=Page[schemas.MediationListItem],
    responses=problem_responses(*errors.LIST_MY_MEDIATIONS_ERRORS),
)
async def list_my_mediations(
    session: SessionDep,
    principal: CurrentPrincipal,
    state: Annotated[
        MediationState | None, Query(description="Only mediations in this state.")
    ] = None,
    cursor: CursorParam = None,
    limit: LimitParam = 20,
) -> Page[schemas.MediationListItem]:
    """The mediations the caller is a party to (as applicant, or as a respondent who
    accepted), newest first."""
    items = await queries.my_mediations(
        session, principal, state=state, after=decode_cursor(cursor), limit=limit + 1
    )
    page, next_cursor = cut_page(items, limit)
    return Page(items=list(page), next_cursor=next_cursor)


@router.get(
    "/mediations/{mediation_id}",
    operation_id="get_mediation",
    summary="Read a mediation as I may see it",
    response_model=schemas.MediationOut,
    responses=problem_responses(*errors.GET_MEDIATION_ERRORS),
)
async def get_mediation(
    mediation_id: uuid.UUID, session: SessionDep, store: StoreDep, principal: CurrentPrincipal
) -> schemas.MediationOut:
    """A mediation with its parties, mediator, deadlines, evidence, outcome and timeline.

    Visible to its parties, its mediator and admins of regions above it; to anyone else it
    does not exist (404). Contact details stay private: a party sees only their own masked
    phone, the mediator and supervisors every party's masked phone, nobody a full number.
    """
    return await queries.get_mediation(session, store, principal, mediation_id)


@router.post(
    "/mediations/{mediation_id}/withdraw",
    operation_id="withdraw_mediation",
    summary="Withdraw my mediation request",
    response_model=schemas.MediationOut,
    responses=problem_responses(*errors.WITHDRAW_MEDIATION_ERRORS),
)
async def withdraw_mediation(
    mediation_id: uuid.UUID,
    session: SessionDep,
    store: StoreDep,
    principal: CurrentPrincipal,
    body: schemas.WithdrawIn | None = None,
) -> schemas.MediationOut:
    """The applicant withdraws the mediation at any point before it ends.

    Only the applicant may (403 for the other parties). Sending it again answers the
    withdrawn mediation unchanged; a mediation that already ended cannot be withdrawn (409).
    """
    reason = body.reason if body else None
    return await service.withdraw(session, store, principal, mediation_id, reason)


@router.post(
    "/mediations/{mediation_id}/respondents/{party_id}/invitation",
    operation_id="reissue_invitation",
    summary="Issue a new invitation code for a respondent",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.InvitationIssued,
    responses=problem_responses(*errors.REISSUE_INVITATION_ERRORS),
)
async def reissue_invitation(
    mediation_id: uuid.UUID,
    party_id: uuid.UUID,
    session: SessionDep,
    personal_data: PersonalDataDep,
    principal: CurrentPrincipal,
) -> schemas.InvitationIssued:
    """A new invitation code for a respondent who has not answered yet (the applicant only,
    before the consent deadline). The code is shown this once; the previous one stops
    working. A retry issues another code, and only the newest works.
    """
    return await invitations.reissue_invitation(
        session, personal_data, principal, mediation_id, party_id
    )


@router.get(
    "/mediation-invitations/{code}",
    operation_id="get_mediation_invitation",
    summary="Read the mediation I am invited to",
    response_model=schemas.InvitationOut,
    responses=problem_responses(*errors.GET_MEDIATION_INVITATION_ERRORS),
)
async def get_mediation_invitation(
    code: InvitationCode,
    session: SessionDep,
    personal_data: PersonalDataDep,
    principal: CurrentPrincipal,
    _: InvitationLimit,
) -> schemas.InvitationOut:
    """What the invited respondent needs to decide: the dispute, what the applicant asks
    for, the applicant's name (never their contact details), the place, and the deadline.

    Once someone answered with the code, it works only for them (409 for anyone else).
    Lookups are rate-limited per user.
    """
    return await invitations.get_invitation(session, personal_data, principal, code)


@router.post(
    "/mediation-invitations/{code}/accept",
    operation_id="accept_mediation_invitation",
    summary="Agree to mediation",
    response_model=schemas.InvitationOut,
    responses=problem_responses(*errors.ACCEPT_MEDIATION_INVITATION_ERRORS),
)
async def accept_mediation_invitation(
    code: InvitationCode,
    session: SessionDep,
    personal_data: PersonalDataDep,
    principal: CurrentPrincipal,
    _: InvitationLimit,
) -> schemas.InvitationOut:
    """Agree to mediation as the invited respondent: the invitation is bound to you, and you
    become a party (`mediation_id` opens it). When every respondent has agreed, a mediator
    is assigned at once (the applicant's preferred studio first), or the supervisors assign
    one later when none fits.

    Sending it again answers the same; the applicant cannot accept their own invitation,
    and a code someone else answered is refused (409).
    """
    return await invitations.accept_invitation(session, personal_data, principal, code)


@router.post(
    "/mediation-invitations/{code}/decline",
    operation_id="decline_mediation_invitation",
    summary="Decline mediation",
    response_model=schemas.InvitationOut,
    responses=problem_responses(*errors.DECLINE_MEDIATION_INVITATION_ERRORS),
)
async def decline_mediation_invitation(
    code: InvitationCode,
    session: SessionDep,
    personal_data: PersonalDataDep,
    principal: CurrentPrincipal,
    _: InvitationLimit,
    body: schemas.DeclineIn | None = None,
) -> schemas.InvitationOut:
    """Decline mediation as the invited respondent (mediation is voluntary). The mediation
    ends as not mediated, and both sides are shown other routes for the dispute (`advice`).

    Sending it again answers the same.
    """
    return await invitations.decline_invitation(
        session, personal_data, principal, code, body.reason if body else None
    )
