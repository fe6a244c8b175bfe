"""What goes wrong when we talk to WeChat, as domain errors a resident can understand.

WeChat answers HTTP 200 even on failure and puts a non-zero `errcode` in the body;
`error_for()` turns that errcode into one of the errors below. Every error keeps the
original errcode (`None` when WeChat was never reached) so callers such as the
notification outbox can tell "the user unsubscribed" (43101) from "try again later".
"""

from __future__ import annotations

from typing import Any

from backend.core.errors import RETRY_AFTER, ShanzhiError, Unavailable

# WeChat's own errcodes, named where the code below branches on them.
SYSTEM_BUSY = -1
INVALID_CREDENTIAL = 40001  # access_token invalid, or not the latest one
INVALID_APPID = 40013
INVALID_ACCESS_TOKEN = 40014
INVALID_CODE = 40029
CODE_BEEN_USED = 40163
INVALID_IP = 40164  # server IP not on the mini-program's whitelist
INVALID_APPSECRET = 40125
USER_BLOCKED = 40226
APPID_MISSING = 41002
APPSECRET_MISSING = 41004
ACCESS_TOKEN_EXPIRED = 42001
MINUTE_QUOTA_REACHED = 45011

# Errcodes after which a fresh access token may help (the call is retried once).
TOKEN_REJECTED = frozenset({INVALID_CREDENTIAL, INVALID_ACCESS_TOKEN, ACCESS_TOKEN_EXPIRED})
# Errcodes that mean our AppID/AppSecret/server setup is wrong: no resident can fix these.
MISCONFIGURED = frozenset(
    {INVALID_APPID, INVALID_APPSECRET, INVALID_IP, APPID_MISSING, APPSECRET_MISSING}
)

# WeChat's minute quota resets at the next minute; a minute is the honest estimate.
RATE_LIMIT_RETRY_AFTER_SECONDS = 60


class WechatError(ShanzhiError):
    """WeChat refused a call for a reason that has no dedicated error below."""

    status = 502
    code = "wechat.error"
    message = {
        "zh-CN": "微信服务返回了错误（错误码 {errcode}），请稍后再试",
        "en": "WeChat returned an error (code {errcode}), please try again later",
    }

    def __init__(
        self, errcode: int | None = None, *, api: str = "", headers: dict[str, str] | None = None
    ) -> None:
        self.errcode = errcode
        self.api = api
        super().__init__(headers=headers, errcode="-" if errcode is None else errcode)

    def extra(self) -> dict[str, Any]:
        # Support staff can look the code up in WeChat's documentation.
        return {} if self.errcode is None else {"wechat_errcode": self.errcode}


class WechatCodeInvalid(WechatError):
    status = 400
    code = "wechat.code_invalid"
    message = {
        "zh-CN": "登录码无效或已使用，请重新登录",
        "en": "The login code is invalid or already used, log in again",
    }


class WechatPhoneCodeInvalid(WechatCodeInvalid):
    """Same stable code as a bad login code, worded for the phone-number button."""

    message = {
        "zh-CN": "手机号授权已失效，请重新点击获取手机号",
        "en": "The phone number authorization has expired, tap to share your number again",
    }


class WechatRateLimited(WechatError):
    status = 429
    code = "wechat.rate_limited"
    message = {
        "zh-CN": "当前使用微信的人数较多，请稍等一分钟再试",
        "en": "Too many requests to WeChat right now, wait a minute and try again",
    }
    documented_headers = RETRY_AFTER

    def __init__(self, errcode: int | None = MINUTE_QUOTA_REACHED, *, api: str = "") -> None:
        super().__init__(
            errcode, api=api, headers={"Retry-After": str(RATE_LIMIT_RETRY_AFTER_SECONDS)}
        )

    def extra(self) -> dict[str, Any]:
        return {**super().extra(), "retry_after": RATE_LIMIT_RETRY_AFTER_SECONDS}


class WechatUserBlocked(WechatError):
    status = 403
    code = "wechat.user_blocked"
    message = {
        "zh-CN": "微信提示您的账号存在风险，暂时无法登录，请在微信中完成安全验证后再试",
        "en": "WeChat has flagged this account as at risk and blocked sign-in; "
        "complete WeChat's security check and try again",
    }


class WechatBusy(WechatError, Unavailable):
    status = 503
    code = "wechat.busy"
    message = {
        "zh-CN": "微信服务繁忙，请稍后再试",
        "en": "WeChat is busy right now, please try again in a moment",
    }
    retry_after = 5

    def extra(self) -> dict[str, Any]:
        return {**WechatError.extra(self), **Unavailable.extra(self)}


class WechatTokenInvalid(WechatError):
    status = 502
    code = "wechat.token_invalid"
    message = {
        "zh-CN": "暂时无法完成与微信的身份验证，请稍后再试",
        "en": "We could not authenticate with WeChat just now, please try again later",
    }


class WechatUnavailable(WechatError, Unavailable):
    status = 503
    code = "wechat.unavailable"
    message = {
        "zh-CN": "暂时连不上微信服务，请稍后再试",
        "en": "WeChat cannot be reached right now, please try again later",
    }
    retry_after = 10

    def extra(self) -> dict[str, Any]:
        return {**WechatError.extra(self), **Unavailable.extra(self)}


class WechatMisconfigured(WechatError):
    """WeChat rejected our AppID, AppSecret or server IP: an operator has to act."""

    status = 502
    code = "wechat.misconfigured"
    message = {
        "zh-CN": "服务的微信配置有误，暂时无法使用微信功能，我们正在处理",
        "en": "This service's WeChat setup is wrong, so WeChat features are unavailable; "
        "we are working on it",
    }


def error_for(api: str, errcode: int, *, phone: bool = False) -> WechatError:
    """The domain error for a non-zero errcode that survived the retries."""
    if errcode in (INVALID_CODE, CODE_BEEN_USED):
        return (
            WechatPhoneCodeInvalid(errcode, api=api)
            if phone
            else WechatCodeInvalid(errcode, api=api)
        )
    if errcode == MINUTE_QUOTA_REACHED:
        return WechatRateLimited(errcode, api=api)
    if errcode == USER_BLOCKED:
        return WechatUserBlocked(errcode, api=api)
    if errcode == SYSTEM_BUSY:
        return WechatBusy(errcode, api=api)
    if errcode in TOKEN_REJECTED:
        return WechatTokenInvalid(errcode, api=api)
    if errcode in MISCONFIGURED:
        return WechatMisconfigured(errcode, api=api)
    return WechatError(errcode, api=api)


__all__ = [
    "WechatBusy",
    "WechatCodeInvalid",
    "WechatError",
    "WechatMisconfigured",
    "WechatPhoneCodeInvalid",
    "WechatRateLimited",
    "WechatTokenInvalid",
    "WechatUnavailable",
    "WechatUserBlocked",
    "error_for",
]
