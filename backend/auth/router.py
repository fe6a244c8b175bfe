"""Login, token refresh, logout, the caller's profile, and role grants on regions."""

from __future__ import annotations

import hashlib
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from backend.auth import errors, service
from backend.auth.models import RoleGrant, User
from backend.auth.principal import CurrentPrincipal
from backend.auth.schemas import (
    Me,
    PhoneBinding,
    RefreshRequest,
    RoleGrantCreate,
    RoleGrantOut,
    RoleOut,
    TokenPair,
    WechatLogin,
)
from backend.core.clock import now
from backend.core.database import SessionDep
from backend.core.deps import PersonalDataDep, SettingsDep, WechatDep
from backend.core.errors import problem_responses
from backend.core.pagination import (
    CursorParam,
    LimitParam,
    Page,
    cut_page,
    decode_cursor,
)
from backend.core.ratelimit import AddressRateLimit, check_rate
from backend.core.text import RegionCode

router = APIRouter(tags=["auth"])

# The calls made without a bearer token are counted per client address, before any work.
# Many residents may share one address (a carrier's NAT, a community center's Wi-Fi), so
# the limits are for a crowd, far above what one phone retrying does; each login costs a
# call to WeChat, whose quota is the whole city's, so it is the tightest. Refreshing comes
# every few minutes from every phone in use: it gets the most room.
LoginAddressLimit = Annotated[None, AddressRateLimit("login_address", "30/minute")]
RefreshAddressLimit = Annotated[None, AddressRateLimit("refresh_address", "600/minute")]
LogoutAddressLimit = Annotated[None, AddressRateLimit("logout_address", "60/minute")]
# A code works once: a phone sends it again only when an answer was lost.
LOGIN_CODE_LIMIT = ("login_code", "5/hour")


async def _login_code_limit(request: Request, body: WechatLogin) -> None:
    """Count the login against its code, whoever sends it, before WeChat is asked."""
    # Counted under a digest: a code still unused is a credential, and must not lie in Redis.
    digest = hashlib.sha256(body.code.encode()).hexdigest()
    await check_rate(request, *LOGIN_CODE_LIMIT, digest)


LoginCodeLimit = Annotated[None, Depends(_login_code_limit)]


async def _me(session: SessionDep, user_id: uuid.UUID) -> Me:
    user, roles = await service.profile(session, user_id)
    return Me(
        id=user.id,
        nickname=user.nickname,
        phone=user.phone_masked,
        roles=[
            RoleOut(role=grant.role, region_code=region.path, region_name=region.name)
            for grant, region in roles
        ],
        created_at=user.created_at,
    )


async def _token_pair(session: SessionDep, issued: service.IssuedTokens) -> TokenPair:
    return TokenPair(
        access_token=issued.access_token,
        expires_in=int((issued.access_expires_at - now()).total_seconds()),
        expires_at=issued.access_expires_at,
        refresh_token=issued.refresh_token,
        refresh_expires_at=issued.refresh_expires_at,
        user=await _me(session, issued.user.id),
    )


@router.post(
    "/auth/wechat/login",
    operation_id="login_with_wechat",
    response_model=TokenPair,
    responses=problem_responses(*errors.LOGIN_WITH_WECHAT_ERRORS),
)
async def login_with_wechat(
    _address: LoginAddressLimit,
    _code: LoginCodeLimit,
    body: WechatLogin,
    session: SessionDep,
    settings: SettingsDep,
    wechat: WechatDep,
) -> TokenPair:
    """Exchange a `wx.login()` code for an access token and a refresh token.

    Limited per client address and per code (429 `request.rate_limited` with
    `Retry-After`), before WeChat is asked: get a new code with `wx.login()` to retry.
    """
    issued = await service.login_with_wechat(session, wechat, settings, body.code)
    return await _token_pair(session, issued)


@router.post(
    "/auth/refresh",
    operation_id="refresh_tokens",
    response_model=TokenPair,
    responses=problem_responses(*errors.REFRESH_TOKENS_ERRORS),
)
async def refresh_tokens(
    _: RefreshAddressLimit,
    body: RefreshRequest,
    session: SessionDep,
    settings: SettingsDep,
) -> TokenPair:
    """Trade a refresh token for a new pair. Each refresh token works once."""
    issued = await service.refresh(session, settings, body.refresh_token)
    return await _token_pair(session, issued)


@router.post(
    "/auth/logout",
    operation_id="logout",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(*errors.LOGOUT_ERRORS),
)
async def logout(_: LogoutAddressLimit, body: RefreshRequest, session: SessionDep) -> Response:
    """End this login: its refresh token (and every one rotated from it) stops working."""
    await service.logout(session, body.refresh_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/me",
    operation_id="get_me",
    response_model=Me,
    responses=problem_responses(*errors.GET_ME_ERRORS),
)
async def get_me(principal: CurrentPrincipal, session: SessionDep) -> Me:
    """The caller's profile: masked phone and the roles they hold on regions."""
    return await _me(session, principal.user_id)


@router.post(
    "/me/phone",
    operation_id="bind_phone",
    response_model=Me,
    responses=problem_responses(*errors.BIND_PHONE_ERRORS),
)
async def bind_phone(
    body: PhoneBinding,
    principal: CurrentPrincipal,
    session: SessionDep,
    wechat: WechatDep,
    personal_data: PersonalDataDep,
) -> Me:
    """Bind the phone number the user approved in the getPhoneNumber button."""
    await service.bind_phone(
        session,
        wechat,
        personal_data,
        principal.user,
        body.code,
    )
    return await _me(session, principal.user_id)


def _grant_out(grant: RoleGrant, user: User) -> RoleGrantOut:
    return RoleGrantOut(
        id=grant.id,
        user_id=user.id,
        nickname=user.nickname,
        role=grant.role,
        region_code=grant.region_path,
        created_at=grant.created_at,
    )


@router.post(
    "/admin/role-grants",
    operation_id="grant_role",
    tags=["admin"],
    status_code=status.HTTP_201_CREATED,
    response_model=RoleGrantOut,
    responses=problem_responses(*errors.GRANT_ROLE_ERRORS),
)
async def grant_role(
    body: RoleGrantCreate, principal: CurrentPrincipal, session: SessionDep
) -> RoleGrantOut:
    """Grant a role on a region (and all below it). Needs admin on that region or above."""
    grant, user = await service.grant_role(
        session,
        principal,
        role=body.role,
        region_code=body.region_code,
        user_id=body.user_id,
        openid=body.openid,
    )
    return _grant_out(grant, user)


@router.get(
    "/admin/role-grants",
    operation_id="list_role_grants",
    tags=["admin"],
    response_model=Page[RoleGrantOut],
    responses=problem_responses(*errors.LIST_ROLE_GRANTS_ERRORS),
)
async def list_role_grants(
    principal: CurrentPrincipal,
    session: SessionDep,
    region: Annotated[RegionCode | None, Query(description="Only grants in this subtree.")] = None,
    cursor: CursorParam = None,
    limit: LimitParam = 20,
) -> Page[RoleGrantOut]:
    """Active grants in the regions the caller administers."""
    rows = await service.list_grants(
        session, principal, region_code=region, after=decode_cursor(cursor), limit=limit + 1
    )
    page, next_cursor = cut_page(rows, limit, key=lambda row: row[0].id)
    return Page(items=[_grant_out(grant, user) for grant, user in page], next_cursor=next_cursor)


@router.delete(
    "/admin/role-grants/{grant_id}",
    operation_id="revoke_role",
    tags=["admin"],
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(*errors.REVOKE_ROLE_ERRORS),
)
async def revoke_role(
    grant_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep
) -> Response:
    """Revoke a grant in the caller's regions (kept on record with who revoked it)."""
    await service.revoke_grant(session, principal, grant_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
