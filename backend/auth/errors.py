"""What can go wrong when logging in, refreshing, binding a phone or granting roles."""

from __future__ import annotations

from backend.auth.principal import AUTH_ERRORS
from backend.core.errors import Forbidden, NotFound, ShanzhiError, Unauthenticated
from backend.core.pagination import CursorInvalid
from backend.core.ratelimit import RateLimited
from backend.regions.errors import RegionNotFound
from backend.wechat import errors as wechat_errors


class RefreshTokenInvalid(Unauthenticated):
    code = "auth.refresh_invalid"
    message = {
        "zh-CN": "登录状态已失效，请重新登录",
        "en": "Your login is no longer valid, log in again",
    }


class RefreshTokenReused(Unauthenticated):
    code = "auth.refresh_reused"
    message = {
        "zh-CN": "检测到登录凭证被重复使用，为保护账号安全已退出所有设备，请重新登录",
        "en": "A used login token was presented again; for your safety every device was "
        "logged out. Log in again",
    }
    commit_before_raising = True


class AccountDisabled(Forbidden):
    code = "auth.account_disabled"
    message = {
        "zh-CN": "该账号已被停用，如有疑问请联系社区工作人员",
        "en": "This account is disabled; contact your community staff",
    }


class UserNotFound(NotFound):
    code = "auth.user_not_found"
    message = {"zh-CN": "找不到该用户", "en": "User not found"}


class GrantNotFound(NotFound):
    code = "auth.grant_not_found"
    message = {"zh-CN": "找不到该授权", "en": "Role grant not found"}


class GrantDuplicate(ShanzhiError):
    status = 409
    code = "auth.grant_duplicate"
    message = {
        "zh-CN": "该用户在此区域已有此角色",
        "en": "The user already holds this role in this region",
    }


class AdminGrantTooHigh(Forbidden):
    code = "auth.grant_not_below"
    message = {
        "zh-CN": "管理员只能在自己管辖区域的下级区域任命管理员",
        "en": "An admin can only appoint admins for regions below their own",
    }


WECHAT_ERRORS = (
    wechat_errors.WechatCodeInvalid,
    wechat_errors.WechatRateLimited,
    wechat_errors.WechatUserBlocked,
    wechat_errors.WechatBusy,
    wechat_errors.WechatUnavailable,
    wechat_errors.WechatMisconfigured,
    wechat_errors.WechatTokenInvalid,
    wechat_errors.WechatError,
)


# --- what each route answers (its `responses=`) ----------------------------------------

LOGIN_WITH_WECHAT_ERRORS = (RateLimited, *WECHAT_ERRORS, AccountDisabled)
REFRESH_TOKENS_ERRORS = (RateLimited, RefreshTokenInvalid, RefreshTokenReused, AccountDisabled)
LOGOUT_ERRORS = (RateLimited,)
GET_ME_ERRORS = (*AUTH_ERRORS,)
BIND_PHONE_ERRORS = (*AUTH_ERRORS, *WECHAT_ERRORS)
GRANT_ROLE_ERRORS = (*AUTH_ERRORS, RegionNotFound, UserNotFound, GrantDuplicate, AdminGrantTooHigh)
LIST_ROLE_GRANTS_ERRORS = (*AUTH_ERRORS, RegionNotFound, CursorInvalid)
REVOKE_ROLE_ERRORS = (*AUTH_ERRORS, GrantNotFound, AdminGrantTooHigh, Forbidden)
