"""The category catalogue: what residents may report, complain about or bring to
mediation, with each category's SLA and handling unit; cached briefly, city admins edit it."""

from __future__ import annotations

import time
import uuid
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.auth.principal import Principal
from backend.cases.categories import schemas
from backend.cases.categories.errors import (
    CatalogueAdminOnly,
    CategoryDuplicate,
    CategoryNotFound,
    CategorySlaInvalid,
)
from backend.cases.errors import (
    CategoryInvalid,
)
from backend.cases.models import (
    CaseKind,
    Category,
)
from backend.core.database import after_commit, insert_unique

KIND_ZH = {CaseKind.report: "报事", CaseKind.complaint: "投诉", CaseKind.mediation: "调解"}


# --- Categories --------------------------------------------------------------------------

# One code per kind of case.
CATEGORY_CODE_CONSTRAINT = "uq_case_category_kind"


def category_out(category: Category) -> schemas.CategoryOut:
    return schemas.CategoryOut.model_validate(category, from_attributes=True)


async def list_categories(
    session: AsyncSession, kind: CaseKind | None, *, include_inactive: bool = False
) -> list[Category]:
    query = select(Category).order_by(
        col(Category.kind), col(Category.position), col(Category.code)
    )
    if kind is not None:
        query = query.where(col(Category.kind) == kind)
    if not include_inactive:
        query = query.where(col(Category.active).is_(True))
    return list((await session.execute(query)).scalars())


def require_catalogue_admin(principal: Principal) -> None:
    """The catalogue is city-wide: only an admin of a city (a one-label path) edits it."""
    if not principal.is_city_admin:
        raise CatalogueAdminOnly()


def _check_sla(response_hours: int, resolution_hours: int) -> None:
    if resolution_hours < response_hours:
        raise CategorySlaInvalid(response_hours=response_hours, resolution_hours=resolution_hours)


async def create_category(
    session: AsyncSession, principal: Principal, data: schemas.CategoryCreate
) -> Category:
    require_catalogue_admin(principal)
    _check_sla(data.response_hours, data.resolution_hours)
    category = Category(**data.model_dump())
    duplicate = CategoryDuplicate(code=data.code, kind=data.kind.value, kind_zh=KIND_ZH[data.kind])
    await insert_unique(session, category, errors={CATEGORY_CODE_CONSTRAINT: lambda: duplicate})
    after_commit(session, _forget_catalogue_after_commit)
    return category


async def update_category(
    session: AsyncSession,
    principal: Principal,
    category_id: uuid.UUID,
    data: schemas.CategoryUpdate,
) -> Category:
    require_catalogue_admin(principal)
    category = await session.get(Category, category_id)
    if category is None:
        raise CategoryNotFound()
    changes = data.model_dump(exclude_unset=True)
    _check_sla(
        changes.get("response_hours", category.response_hours),
        changes.get("resolution_hours", category.resolution_hours),
    )
    for name, value in changes.items():
        setattr(category, name, value)
    await session.flush()
    after_commit(session, _forget_catalogue_after_commit)
    return category


# Submissions read the catalogue on every request; it changes rarely, so each process keeps
# it for a short while. A change made here applies at once, elsewhere within this time.
CATALOGUE_SECONDS = 30.0


_catalogue: dict[tuple[str, str, str], tuple[float, dict[str, Any]]] = {}


async def active_category(session: AsyncSession, kind: CaseKind, ref: str) -> Category | None:
    """The active category of `kind` named by id or code, from the short-lived cache."""
    # Keyed by database too: one process may serve several (tests do).
    key = (str(session.get_bind().engine.url.database), kind.value, ref)
    cached = _catalogue.get(key)
    if cached is not None and cached[0] > time.monotonic():
        return Category(**cached[1])
    category = (
        await session.execute(
            select(Category).where(
                col(Category.kind) == kind, col(Category.active).is_(True), _category_ref(ref)
            )
        )
    ).scalar_one_or_none()
    if category is not None:
        columns = {c.name: getattr(category, c.name) for c in Category.__table__.columns}  # type: ignore[attr-defined]
        _catalogue[key] = (time.monotonic() + CATALOGUE_SECONDS, columns)
    return category


def forget_catalogue() -> None:
    _catalogue.clear()


async def _forget_catalogue_after_commit(session: AsyncSession) -> None:
    forget_catalogue()


async def load_category(session: AsyncSession, kind: CaseKind, ref: str) -> Category:
    """An active category of `kind` by id or code, else 422 `case.category_invalid`."""
    category = await active_category(session, kind, ref)
    if category is None:
        raise CategoryInvalid()
    return category


def _category_ref(ref: str) -> Any:
    try:
        category_id = uuid.UUID(ref)
    except ValueError:
        return col(Category.code) == ref
    # A code is never written like a UUID, but if one were, it still matches.
    return or_(col(Category.id) == category_id, col(Category.code) == ref)
