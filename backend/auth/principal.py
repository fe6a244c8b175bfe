"""The caller, resolved once per request: the user, their roles and the regions they cover.

Every endpoint that acts on something in a region asks the principal, and every list filters
with `region_scope()`, so a record outside the caller's regions is never fetched at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import and_, false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.auth.models import Role, RoleGrant, User
from backend.core.clock import now
from backend.core.database import SessionDep
from backend.core.deps import SettingsDep
from backend.core.errors import Forbidden, Unauthenticated
from backend.core.ratelimit import check_rate
from backend.core.security import TokenExpired, TokenInvalid, read_access_token

# An admin on a region may do whatever any staff role may do there.
ROLE_IMPLIED_BY_ADMIN = True


@dataclass(frozen=True)
class Grant:
    role: Role
    region_path: str


def path_within(path: str, ancestor: str) -> bool:
    """ltree's `<@` in Python: `gz.tianhe.x` is within `gz.tianhe` and within itself."""
    return path == ancestor or path.startswith(ancestor + ".")


@dataclass(frozen=True)
class Principal:
    user: User
    grants: tuple[Grant, ...] = field(default_factory=tuple)

    @property
    def user_id(self) -> uuid.UUID:
        return self.user.id

    @property
    def is_city_admin(self) -> bool:
        """An admin of a whole city (a one-label path): city-wide settings are theirs."""
        return any(
            grant.role is Role.admin and "." not in grant.region_path for grant in self.grants
        )

    def paths_for(self, roles: tuple[Role, ...]) -> list[str]:
        """Region paths where the caller holds one of `roles` (admin counts as every role)."""
        wanted = set(roles)
        if ROLE_IMPLIED_BY_ADMIN:
            wanted.add(Role.admin)
        return [g.region_path for g in self.grants if g.role in wanted]

    def can(self, roles: tuple[Role, ...], region_path: str) -> bool:
        """May the caller act with one of `roles` on something located at `region_path`?"""
        return any(path_within(region_path, p) for p in self.paths_for(roles))

    def require(self, roles: tuple[Role, ...], region_path: str) -> None:
        if not self.can(roles, region_path):
            raise Forbidden()

    @property
    def is_staff(self) -> bool:
        return bool(self.grants)


def region_scope(column: Any, principal: Principal, roles: tuple[Role, ...]) -> Any:
    """SQL condition: `column` (an ltree path) lies within one of the caller's regions."""
    paths = principal.paths_for(roles)
    if not paths:
        return false()
    return or_(*(column.descendant_of(p) for p in paths))


async def load_principal(session: AsyncSession, user_id: uuid.UUID) -> Principal | None:
    """The user and their active grants, in one query (it runs on every request)."""
    rows = (
        await session.execute(
            select(User, col(RoleGrant.role), col(RoleGrant.region_path))
            .outerjoin(
                RoleGrant,
                and_(
                    RoleGrant.user_id == User.id,  # type: ignore[arg-type]
                    RoleGrant.revoked_at.is_(None),  # type: ignore[union-attr]
                ),
            )
            .where(User.id == user_id)  # type: ignore[arg-type]
        )
    ).all()
    if not rows or not rows[0][0].is_active:
        return None
    grants = tuple(
        Grant(role=Role(role), region_path=path) for _, role, path in rows if role is not None
    )
    return Principal(user=rows[0][0], grants=grants)


_bearer = HTTPBearer(auto_error=False, description="Access token from /v1/auth/wechat/login")


async def _current_principal(
    settings: SettingsDep,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise Unauthenticated()
    claims = read_access_token(credentials.credentials, settings, now())
    principal = await load_principal(session, claims.user_id)
    if principal is None:
        raise TokenInvalid()
    return principal


CurrentPrincipal = Annotated[Principal, Depends(_current_principal)]
# What an endpoint taking `CurrentPrincipal` may answer before it runs (for `responses=`).
AUTH_ERRORS = (Unauthenticated, TokenExpired, TokenInvalid)


def rate_limit(name: str, rule: str) -> Callable[..., Awaitable[None]]:
    """A dependency allowing each user `rule` (e.g. "20/minute") calls of `name`."""

    async def check(request: Request, principal: CurrentPrincipal) -> None:
        await check_rate(request, name, rule, str(principal.user_id))

    return check


def RateLimit(name: str, rule: str) -> Any:
    """`Annotated[None, RateLimit("case_submit", "10/minute")]`: a parameter that counts
    the call against the caller's limit."""
    return Depends(rate_limit(name, rule))
