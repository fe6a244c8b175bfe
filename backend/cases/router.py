"""Cases over HTTP: submitting reports and complaints, and the resident's side of a case."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response, status

from backend.auth.principal import AUTH_ERRORS, CurrentPrincipal, RateLimit
from backend.cases import errors, schemas, service
from backend.cases import queries as cases_queries
from backend.cases.errors import (
    CategoryInvalid,
    IdempotencyConflict,
    OutsideServiceArea,
)
from backend.cases.models import CaseKind, CaseState
from backend.core.database import SessionDep
from backend.core.deps import GridMapDep, SettingsDep, StoreDep
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

router = APIRouter(tags=["cases"])


_SUBMIT_ERRORS = (
    *AUTH_ERRORS,
    RateLimited,
    *KEY_ERRORS,
    IdempotencyConflict,
    OutsideServiceArea,
    CategoryInvalid,
    *CLAIM_ERRORS,
)


IdempotencyKey = Annotated[
    Verbatim | None,
    Header(
        alias="Idempotency-Key",
        description="Required. 1–128 visible ASCII characters, new for each submission and "
        "the same on every retry of it (e.g. a UUID made when the resident taps submit).",
    ),
]


SubmitLimit = Annotated[None, RateLimit("case_submit", "10/minute")]


def _submission_responses() -> dict[int | str, dict[str, Any]]:
    return replayable(
        _SUBMIT_ERRORS, schemas.SubmissionOut, "A retry: the case this Idempotency-Key made before"
    )


async def _submit(
    session: SessionDep,
    grid_map: GridMapDep,
    store: StoreDep,
    principal: CurrentPrincipal,
    kind: CaseKind,
    body: schemas.ReportCreate,
    idempotency_key: str | None,
) -> Response:
    submission = await service.submit(
        session,
        grid_map=grid_map,
        store=store,
        principal=principal,
        kind=kind,
        body=body,
        idempotency_key=idempotency_key,
    )
    # Serialized once here: the model is already valid, no need to validate it again.
    return created_or_replayed(submission.case, replayed=submission.replayed)


@router.post(
    "/reports",
    operation_id="submit_report",
    summary="Report a problem (随手拍) with photos and its place",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.SubmissionOut,
    responses=_submission_responses(),
)
async def submit_report(
    session: SessionDep,
    grid_map: GridMapDep,
    store: StoreDep,
    principal: CurrentPrincipal,
    body: schemas.ReportCreate,
    _: SubmitLimit,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Report a problem (随手拍): what, where, and up to 9 photos or videos.

    The location may be GCJ-02 (as the phone gives it) or WGS-84; it must lie inside a grid.
    A retry with the same `Idempotency-Key` and body answers the same case (200); the same
    key with another body is refused. The answer lists open cases of the same category
    within 100 m from the last 3 days, which the resident may support instead.
    """
    return await _submit(
        session, grid_map, store, principal, CaseKind.report, body, idempotency_key
    )


@router.post(
    "/complaints",
    operation_id="submit_complaint",
    summary="Complain about a department, property company or business",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.SubmissionOut,
    responses=_submission_responses(),
)
async def submit_complaint(
    session: SessionDep,
    grid_map: GridMapDep,
    store: StoreDep,
    principal: CurrentPrincipal,
    body: schemas.ComplaintCreate,
    _: SubmitLimit,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Complain about a department, a property company or a business.

    As a report, plus `target`: whom the complaint is about. Idempotent in the same way.
    """
    return await _submit(
        session, grid_map, store, principal, CaseKind.complaint, body, idempotency_key
    )


@router.get(
    "/me/cases",
    operation_id="list_my_cases",
    summary="List my reports and complaints",
    response_model=Page[schemas.CaseListItem],
    responses=problem_responses(*errors.LIST_MY_CASES_ERRORS),
)
async def list_my_cases(
    session: SessionDep,
    principal: CurrentPrincipal,
    state: Annotated[CaseState | None, Query(description="Only cases in this state.")] = None,
    cursor: CursorParam = None,
    limit: LimitParam = 20,
) -> Page[schemas.CaseListItem]:
    """The caller's reports and complaints, newest first."""
    items = await cases_queries.my_cases(
        session, principal, state=state, after=decode_cursor(cursor), limit=limit + 1
    )
    page, next_cursor = cut_page(items, limit)
    return Page(items=list(page), next_cursor=next_cursor)


@router.get(
    "/cases/{case_id}",
    operation_id="get_case",
    summary="Read a case with its timeline and attachments",
    response_model=schemas.CaseOut,
    responses=problem_responses(*errors.GET_CASE_ERRORS),
)
async def get_case(
    case_id: uuid.UUID, session: SessionDep, store: StoreDep, principal: CurrentPrincipal
) -> schemas.CaseOut:
    """A report or complaint with its timeline and attachments.

    Visible to the resident who submitted it and to staff whose regions cover its place or
    its queue; to anyone else it does not exist (404). Staff never see who submitted an
    anonymous case.
    """
    case = await cases_queries.visible_case(session, principal, case_id)
    return await cases_queries.case_view(session, store, case, viewer=principal)


@router.post(
    "/cases/{case_id}/support",
    operation_id="support_case",
    summary="Add my +1 to an open case",
    response_model=schemas.SupportOut,
    responses=problem_responses(*errors.SUPPORT_CASE_ERRORS),
)
async def support_case(
    case_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> schemas.SupportOut:
    """Add a +1 to an open report or complaint instead of reporting it again.

    Counts once per person however often it is sent; not for one's own case.
    """
    return schemas.SupportOut(supporters=await service.support(session, principal, case_id))


@router.post(
    "/cases/{case_id}/rating",
    operation_id="rate_case",
    summary="Rate a resolved case, which closes it",
    response_model=schemas.CaseOut,
    responses=problem_responses(*errors.RATE_CASE_ERRORS),
)
async def rate_case(
    case_id: uuid.UUID,
    body: schemas.RatingIn,
    session: SessionDep,
    store: StoreDep,
    principal: CurrentPrincipal,
) -> schemas.CaseOut:
    """Rate a resolved case from 1 to 5, which closes it. Only its reporter may.

    Sending the same rating again answers the closed case unchanged.
    """
    return await service.rate(session, store, principal, case_id, body.rating, body.comment)


@router.post(
    "/cases/{case_id}/reopen",
    operation_id="reopen_case",
    summary="Reopen a resolved or closed case",
    response_model=schemas.CaseOut,
    responses=problem_responses(*errors.REOPEN_CASE_ERRORS),
)
async def reopen_case(
    case_id: uuid.UUID,
    body: schemas.ReopenIn,
    session: SessionDep,
    settings: SettingsDep,
    store: StoreDep,
    principal: CurrentPrincipal,
) -> schemas.CaseOut:
    """Dispute the result: reopen a resolved or closed case within 7 days of its resolution.

    Only its reporter may. The case goes back to the queue with fresh deadlines.
    """
    return await service.reopen(
        session,
        store,
        principal,
        case_id,
        body.reason,
        window_days=settings.case_reopen_days,
    )
