"""Cases over HTTP: the category catalogue, submitting, and the resident's side of a case."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response, status

from backend.auth.principal import AUTH_ERRORS, CurrentPrincipal, RateLimit
from backend.cases import schemas, service
from backend.cases.errors import (
    AlreadyRated,
    CannotSupportOwnCase,
    CaseChangedMeanwhile,
    CaseNotFound,
    CaseNotOpen,
    CaseTransitionNotAllowed,
    CatalogueAdminOnly,
    CategoryDuplicate,
    CategoryInvalid,
    CategoryNotFound,
    CategorySlaInvalid,
    IdempotencyConflict,
    NotReporter,
    OutsideServiceArea,
    ReopenWindowPassed,
)
from backend.cases.models import CaseKind, CaseState
from backend.core.database import SessionDep
from backend.core.errors import problem_responses
from backend.core.idempotency import KEY_ERRORS, created_or_replayed, replayable
from backend.core.pagination import (
    CursorInvalid,
    CursorParam,
    LimitParam,
    Page,
    cut_page,
    decode_cursor,
)
from backend.core.ratelimit import RateLimited
from backend.storage.errors import CLAIM_ERRORS
from backend.storage.service import ObjectStore

router = APIRouter(tags=["cases"])
admin_router = APIRouter(prefix="/admin/categories", tags=["admin"])

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
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Required. 1–128 visible ASCII characters, new for each submission and "
        "the same on every retry of it (e.g. a UUID made when the resident taps submit).",
    ),
]
SubmitLimit = RateLimit("case_submit", "10/minute")


def _store(request: Request) -> ObjectStore:
    store: ObjectStore = request.app.state.object_store
    return store


def _submission_responses() -> dict[int | str, dict[str, Any]]:
    return replayable(
        _SUBMIT_ERRORS, schemas.SubmissionOut, "A retry: the case this Idempotency-Key made before"
    )


async def _submit(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    kind: CaseKind,
    body: schemas.ReportCreate,
    idempotency_key: str | None,
) -> Response:
    submission = await service.submit(
        session,
        grid_map=request.app.state.grid_map,
        store=_store(request),
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
    request: Request,
    session: SessionDep,
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
    return await _submit(request, session, principal, CaseKind.report, body, idempotency_key)


@router.post(
    "/complaints",
    operation_id="submit_complaint",
    summary="Complain about a department, property company or business",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.SubmissionOut,
    responses=_submission_responses(),
)
async def submit_complaint(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    body: schemas.ComplaintCreate,
    _: SubmitLimit,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Complain about a department, a property company or a business.

    As a report, plus `target`: whom the complaint is about. Idempotent in the same way.
    """
    return await _submit(request, session, principal, CaseKind.complaint, body, idempotency_key)


@router.get(
    "/me/cases",
    operation_id="list_my_cases",
    summary="List my reports and complaints",
    response_model=Page[schemas.CaseListItem],
    responses=problem_responses(*AUTH_ERRORS, CursorInvalid),
)
async def list_my_cases(
    session: SessionDep,
    principal: CurrentPrincipal,
    state: Annotated[CaseState | None, Query(description="Only cases in this state.")] = None,
    cursor: CursorParam = None,
    limit: LimitParam = 20,
) -> Page[schemas.CaseListItem]:
    """The caller's reports and complaints, newest first."""
    items = await service.my_cases(
        session, principal, state=state, after=decode_cursor(cursor), limit=limit + 1
    )
    page, next_cursor = cut_page(items, limit)
    return Page(items=list(page), next_cursor=next_cursor)


@router.get(
    "/cases/{case_id}",
    operation_id="get_case",
    summary="Read a case with its timeline and attachments",
    response_model=schemas.CaseOut,
    responses=problem_responses(*AUTH_ERRORS, CaseNotFound),
)
async def get_case(
    case_id: uuid.UUID, request: Request, session: SessionDep, principal: CurrentPrincipal
) -> schemas.CaseOut:
    """A report or complaint with its timeline and attachments.

    Visible to the resident who submitted it and to staff whose regions cover its place or
    its queue; to anyone else it does not exist (404). Staff never see who submitted an
    anonymous case.
    """
    case = await service.visible_case(session, principal, case_id)
    return await service.case_view(session, _store(request), case, viewer=principal)


@router.post(
    "/cases/{case_id}/support",
    operation_id="support_case",
    summary="Add my +1 to an open case",
    response_model=schemas.SupportOut,
    responses=problem_responses(*AUTH_ERRORS, CaseNotFound, CannotSupportOwnCase, CaseNotOpen),
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
    responses=problem_responses(
        *AUTH_ERRORS,
        CaseNotFound,
        NotReporter,
        CaseTransitionNotAllowed,
        AlreadyRated,
        CaseChangedMeanwhile,
    ),
)
async def rate_case(
    case_id: uuid.UUID,
    body: schemas.RatingIn,
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> schemas.CaseOut:
    """Rate a resolved case from 1 to 5, which closes it. Only its reporter may.

    Sending the same rating again answers the closed case unchanged.
    """
    return await service.rate(
        session, _store(request), principal, case_id, body.rating, body.comment
    )


@router.post(
    "/cases/{case_id}/reopen",
    operation_id="reopen_case",
    summary="Reopen a resolved or closed case",
    response_model=schemas.CaseOut,
    responses=problem_responses(
        *AUTH_ERRORS,
        CaseNotFound,
        NotReporter,
        CaseTransitionNotAllowed,
        ReopenWindowPassed,
        CaseChangedMeanwhile,
    ),
)
async def reopen_case(
    case_id: uuid.UUID,
    body: schemas.ReopenIn,
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> schemas.CaseOut:
    """Dispute the result: reopen a resolved or closed case within 7 days of its resolution.

    Only its reporter may. The case goes back to the queue with fresh deadlines.
    """
    return await service.reopen(
        session,
        _store(request),
        principal,
        case_id,
        body.reason,
        window_days=request.app.state.settings.case_reopen_days,
    )


# --- The category catalogue --------------------------------------------------------------


@router.get(
    "/categories",
    operation_id="list_categories",
    summary="List the categories residents choose from",
    response_model=list[schemas.CategoryOut],
    responses=problem_responses(),
)
async def list_categories(
    session: SessionDep,
    kind: Annotated[CaseKind | None, Query(description="Only categories of this kind.")] = None,
) -> list[schemas.CategoryOut]:
    """The categories a resident can choose from, in display order. Public."""
    return [service.category_out(c) for c in await service.list_categories(session, kind)]


@admin_router.get(
    "",
    operation_id="list_all_categories",
    summary="List every category, inactive ones included",
    response_model=list[schemas.CategoryOut],
    responses=problem_responses(*AUTH_ERRORS, CatalogueAdminOnly),
)
async def list_all_categories(
    session: SessionDep,
    principal: CurrentPrincipal,
    kind: Annotated[CaseKind | None, Query(description="Only categories of this kind.")] = None,
) -> list[schemas.CategoryOut]:
    """Every category, inactive ones included. Needs the admin role on a city."""
    service.require_catalogue_admin(principal)
    categories = await service.list_categories(session, kind, include_inactive=True)
    return [service.category_out(c) for c in categories]


@admin_router.post(
    "",
    operation_id="create_category",
    summary="Add a category",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.CategoryOut,
    responses=problem_responses(
        *AUTH_ERRORS, CatalogueAdminOnly, CategoryDuplicate, CategorySlaInvalid
    ),
)
async def create_category(
    body: schemas.CategoryCreate, session: SessionDep, principal: CurrentPrincipal
) -> schemas.CategoryOut:
    """Add a category with its SLA and handling unit. Needs the admin role on a city."""
    return service.category_out(await service.create_category(session, principal, body))


@admin_router.patch(
    "/{category_id}",
    operation_id="update_category",
    summary="Change a category",
    response_model=schemas.CategoryOut,
    responses=problem_responses(
        *AUTH_ERRORS, CatalogueAdminOnly, CategoryNotFound, CategorySlaInvalid
    ),
)
async def update_category(
    category_id: uuid.UUID,
    body: schemas.CategoryUpdate,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> schemas.CategoryOut:
    """Rename, re-time, reorder, or (de)activate a category. Needs the admin role on a city.

    New deadlines apply to cases submitted from now on; a deactivated category disappears
    from the app's list, while its cases stay as they are.
    """
    return service.category_out(
        await service.update_category(session, principal, category_id, body)
    )
