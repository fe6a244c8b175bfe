"""Identity rules: WeChat login, rotating refresh tokens, phone binding, role grants."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.auth import errors
from backend.auth.models import RefreshToken, Role, RoleGrant, User
from backend.auth.principal import Principal, path_within, region_scope
from backend.core.clock import now
from backend.core.config import Settings
from backend.core.database import release_connection
from backend.core.ids import new_id
from backend.core.pagination import keyset
from backend.core.security import (
    PersonalData,
    hash_refresh_secret,
    issue_access_token,
    mask_phone,
    new_refresh_secret,
)
from backend.regions import service as regions_service
from backend.regions.models import Region
from backend.wechat.client import WechatClient

log = logging.getLogger("shanzhi.auth")

# A phone on a flaky network may send the same refresh twice: within this window the second
# use rotates again instead of being treated as theft.
REFRESH_REUSE_GRACE = timedelta(seconds=30)


@dataclass(frozen=True)
class IssuedTokens:
    user: User
    access_token: str
    access_expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime


async def login_with_wechat(
    session: AsyncSession, wechat: WechatClient, settings: Settings, code: str
) -> IssuedTokens:
    wx = await wechat.code2session(code)
    at = now()
    statement = (
        insert(User)  # type: ignore[call-overload]
        .values(id=new_id(), openid=wx.openid, unionid=wx.unionid, is_active=True, last_login_at=at)
        .on_conflict_do_update(
            index_elements=[User.openid],
            # Keep a unionid once known; WeChat sends it only when the app is linked.
            set_={
                "unionid": func.coalesce(insert(User).excluded.unionid, User.unionid),
                "last_login_at": at,
            },
        )
        .returning(User.id)
    )
    user_id = (await session.execute(statement)).scalar_one()
    user = await session.get(User, user_id, populate_existing=True)
    assert user is not None
    if not user.is_active:
        raise errors.AccountDisabled()
    log.info("user %s logged in", user.id)
    return await _issue(session, settings, user, family_id=new_id(), at=at)


async def _issue(
    session: AsyncSession, settings: Settings, user: User, *, family_id: uuid.UUID, at: datetime
) -> IssuedTokens:
    access_token, access_expires_at = issue_access_token(user.id, settings, at)
    secret = new_refresh_secret()
    refresh_expires_at = at + timedelta(days=settings.refresh_token_days)
    session.add(
        RefreshToken(
            user_id=user.id,
            family_id=family_id,
            token_hash=hash_refresh_secret(secret),
            created_at=at,
            expires_at=refresh_expires_at,
        )
    )
    await session.flush()
    return IssuedTokens(user, access_token, access_expires_at, secret, refresh_expires_at)


async def refresh(session: AsyncSession, settings: Settings, secret: str) -> IssuedTokens:
    at = now()
    token = (
        await session.execute(
            select(RefreshToken)
            .where(col(RefreshToken.token_hash) == hash_refresh_secret(secret))
            .with_for_update()  # two refreshes of one token take turns
        )
    ).scalar_one_or_none()
    if token is None or token.revoked_at is not None or token.expires_at <= at:
        raise errors.RefreshTokenInvalid()
    if token.rotated_at is not None and at - token.rotated_at > REFRESH_REUSE_GRACE:
        await revoke_family(session, token.family_id, at)
        log.warning(
            "refresh token reused: family %s of user %s revoked", token.family_id, token.user_id
        )
        raise errors.RefreshTokenReused()
    user = await session.get(User, token.user_id)
    if user is None or not user.is_active:
        raise errors.AccountDisabled()
    if token.rotated_at is None:
        token.rotated_at = at
    return await _issue(session, settings, user, family_id=token.family_id, at=at)


async def revoke_family(session: AsyncSession, family_id: uuid.UUID, at: datetime) -> None:
    await session.execute(
        update(RefreshToken)
        .where(col(RefreshToken.family_id) == family_id, col(RefreshToken.revoked_at).is_(None))
        .values(revoked_at=at)
    )


async def logout(session: AsyncSession, secret: str) -> None:
    """Ends the session the refresh token belongs to; unknown tokens are ignored."""
    token = (
        await session.execute(
            select(RefreshToken).where(col(RefreshToken.token_hash) == hash_refresh_secret(secret))
        )
    ).scalar_one_or_none()
    if token is not None:
        await revoke_family(session, token.family_id, now())


async def bind_phone(
    session: AsyncSession,
    wechat: WechatClient,
    personal_data: PersonalData,
    user: User,
    code: str,
) -> User:
    # WeChat is asked with no database connection held: nothing is written yet.
    await release_connection(session)
    info = await wechat.phone_number(code)
    phone = info.pure_phone_number
    user.phone_ciphertext = personal_data.encrypt(phone)
    user.phone_hash = personal_data.lookup_hash(phone)
    user.phone_masked = mask_phone(phone)
    session.add(user)
    await session.flush()
    log.info("user %s bound a phone", user.id)
    return user


async def roles_of(session: AsyncSession, user_id: uuid.UUID) -> list[tuple[RoleGrant, Region]]:
    rows = await session.execute(
        select(RoleGrant, Region)
        .join(Region, Region.id == RoleGrant.region_id)  # type: ignore[arg-type]
        .where(col(RoleGrant.user_id) == user_id, col(RoleGrant.revoked_at).is_(None))
        .order_by(RoleGrant.region_path, RoleGrant.role)
    )
    return [(grant, region) for grant, region in rows.all()]


async def profile(
    session: AsyncSession, user_id: uuid.UUID
) -> tuple[User, list[tuple[RoleGrant, Region]]]:
    """A user and the roles they hold, each with its region."""
    user = await session.get(User, user_id)
    assert user is not None
    return user, await roles_of(session, user_id)


async def grant_role(
    session: AsyncSession,
    principal: Principal,
    *,
    role: Role,
    region_code: str,
    user_id: uuid.UUID | None,
    openid: str | None,
) -> tuple[RoleGrant, User]:
    region = await regions_service.region_in_scope(session, principal, region_code, (Role.admin,))
    if role == Role.admin and not any(
        path_within(region.path, p) and region.path != p for p in principal.paths_for((Role.admin,))
    ):
        raise errors.AdminGrantTooHigh()
    condition = User.id == user_id if user_id is not None else User.openid == openid
    user = (await session.execute(select(User).where(condition))).scalar_one_or_none()  # type: ignore[arg-type]
    if user is None:
        raise errors.UserNotFound()
    existing = (
        await session.execute(
            select(col(RoleGrant.id)).where(
                RoleGrant.user_id == user.id,  # type: ignore[arg-type]
                RoleGrant.role == role,  # type: ignore[arg-type]
                RoleGrant.region_id == region.id,  # type: ignore[arg-type]
                RoleGrant.revoked_at.is_(None),  # type: ignore[union-attr]
            )
        )
    ).first()
    if existing is not None:
        raise errors.GrantDuplicate()
    grant = RoleGrant(
        user_id=user.id,
        role=role,
        region_id=region.id,
        region_path=region.path,
        granted_by=principal.user_id,
    )
    session.add(grant)
    await session.flush()
    log.info("%s granted %s on %s to user %s", principal.user_id, role, region.path, user.id)
    return grant, user


async def list_grants(
    session: AsyncSession,
    principal: Principal,
    *,
    region_code: str | None,
    after: uuid.UUID | None,
    limit: int,
) -> list[tuple[RoleGrant, User]]:
    query = (
        select(RoleGrant, User)
        .join(User, User.id == RoleGrant.user_id)  # type: ignore[arg-type]
        .where(
            RoleGrant.revoked_at.is_(None),  # type: ignore[union-attr]
            region_scope(RoleGrant.region_path, principal, (Role.admin,)),
        )
        .limit(limit)
    )
    if region_code:
        region = await regions_service.region_in_scope(
            session, principal, region_code, (Role.admin,)
        )
        query = query.where(RoleGrant.region_path.descendant_of(region.path))  # type: ignore[attr-defined]
    query = keyset(query, col(RoleGrant.id), after, newest_first=False)
    rows = await session.execute(query)
    return [(grant, user) for grant, user in rows.all()]


async def revoke_grant(session: AsyncSession, principal: Principal, grant_id: uuid.UUID) -> None:
    grant = (
        await session.execute(
            select(RoleGrant)
            .where(
                col(RoleGrant.id) == grant_id,
                RoleGrant.revoked_at.is_(None),  # type: ignore[union-attr]
                region_scope(RoleGrant.region_path, principal, (Role.admin,)),
            )
            .with_for_update()
        )
    ).scalar_one_or_none()
    if grant is None:
        raise errors.GrantNotFound()
    if grant.role == Role.admin and not any(
        path_within(grant.region_path, p) and grant.region_path != p
        for p in principal.paths_for((Role.admin,))
    ):
        raise errors.AdminGrantTooHigh()
    grant.revoked_at = now()
    grant.revoked_by = principal.user_id
    session.add(grant)
    await session.flush()
    log.info("%s revoked grant %s", principal.user_id, grant.id)
