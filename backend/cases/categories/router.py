"""The category catalogue over HTTP: public reading, and the city admins' editing."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from backend.auth.principal import CurrentPrincipal
from backend.cases.categories import errors, schemas, service
from backend.cases.models import CaseKind
from backend.core.database import SessionDep
from backend.core.errors import problem_responses
from backend.core.ratelimit import AddressRateLimit

router = APIRouter()
admin_router = APIRouter(prefix="/admin/categories", tags=["admin"])

# Public, so counted per client address; every mini-program start reads it, and a carrier's
# NAT may put thousands of phones behind one address: room for a crowd.
CategoriesAddressLimit = Annotated[None, AddressRateLimit("categories_address", "600/minute")]


# --- The category catalogue --------------------------------------------------------------


@router.get(
    "/categories",
    tags=["cases"],
    operation_id="list_categories",
    summary="List the categories residents choose from",
    response_model=list[schemas.CategoryOut],
    responses=problem_responses(*errors.LIST_CATEGORIES_ERRORS),
)
async def list_categories(
    _: CategoriesAddressLimit,
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
    responses=problem_responses(*errors.LIST_ALL_CATEGORIES_ERRORS),
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
    responses=problem_responses(*errors.CREATE_CATEGORY_ERRORS),
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
    responses=problem_responses(*errors.UPDATE_CATEGORY_ERRORS),
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


router.include_router(admin_router)
