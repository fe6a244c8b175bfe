"""httpx client for the WeChat server API: login, phone number, access token, messages.

WeChat answers HTTP 200 even when a call fails and puts a non-zero `errcode` in the body;
every call goes through `_call`, which retries once on "system busy" (-1), once with a
fresh access token when WeChat rejects ours, and otherwise raises the matching error from
`backend.wechat.errors`.

The access token is shared by every process of the deployment: WeChat keeps only a
limited number of tokens alive and force-refreshing one invalidates the others, so one
process at a time refreshes it, under a PostgreSQL advisory lock, and stores it in the
`wechat_access_token` table for the others to read.

Nothing secret is ever logged: not the AppSecret, not login or phone codes, not session
keys, not access tokens, not phone numbers. Each call logs its api name, errcode and
duration only.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from backend.core.clock import now
from backend.core.config import Settings
from backend.wechat.errors import (
    SYSTEM_BUSY,
    TOKEN_REJECTED,
    WechatUnavailable,
    error_for,
)
from backend.wechat.models import WechatAccessToken
from backend.wechat.schemas import (
    Code2SessionBody,
    MsgSecCheckBody,
    PhoneNumberBody,
    StableTokenBody,
    Suggest,
)

log = logging.getLogger("shanzhi.wechat")

# Refresh this long before WeChat's expiry: in its last 5 minutes WeChat's normal mode
# hands out the next token while the old one still works, so nobody sees a gap.
REFRESH_MARGIN = timedelta(minutes=5)

_Body = TypeVar("_Body", bound=BaseModel)


@dataclass(frozen=True, slots=True, repr=False)
class WechatSession:
    """What code2Session tells us about the user. `session_key` never leaves the server."""

    openid: str
    unionid: str | None
    session_key: str

    def __repr__(self) -> str:
        # The session key decrypts the user's data; keep it out of logs and tracebacks.
        return f"WechatSession(openid={self.openid!r}, unionid={self.unionid!r}, session_key=***)"


@dataclass(frozen=True, slots=True, repr=False)
class PhoneInfo:
    """The user's phone number as WeChat confirmed it."""

    phone_number: str  # with the country code for numbers outside mainland China
    pure_phone_number: str  # without the country code
    country_code: str

    def __repr__(self) -> str:
        # Personal data: never printed, even in a debugger or a traceback.
        return f"PhoneInfo(country_code={self.country_code!r}, phone_number=***)"


class _RedactQuery(logging.Filter):
    """httpx logs every request URL at INFO; ours carry the AppSecret, codes and tokens."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                arg.copy_with(query=None) if isinstance(arg, httpx.URL) else arg
                for arg in record.args
            )
        return True


def _install_httpx_redaction() -> None:
    httpx_log = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactQuery) for f in httpx_log.filters):
        httpx_log.addFilter(_RedactQuery())


_install_httpx_redaction()


def _advisory_key(appid: str) -> int:
    """A stable signed 64-bit lock key per AppID, the same in every process."""
    digest = hashlib.blake2b(f"shanzhi.wechat_access_token:{appid}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


class WechatClient:
    """One per process: holds the HTTP connection pool and the in-memory token cache."""

    # A pause before retrying "system busy", so the retry does not hit the same hiccup.
    busy_retry_delay: float = 0.1

    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._appid = settings.wechat_appid
        self._secret = settings.wechat_secret  # a SecretStr: masked if this object is printed
        # Unset in development means the bundled emulator that `shanzhi serve` starts.
        base_url = settings.wechat_api_base or f"http://127.0.0.1:{settings.emulator_port}"
        # Every wait is bounded, the wait for a free connection shortest of all: a slow
        # WeChat answers 503 `wechat.unavailable` rather than queueing requests.
        self._http = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(
                settings.wechat_timeout_seconds,
                connect=min(settings.wechat_timeout_seconds, 2.0),
                pool=1.0,
            ),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
            transport=transport,
        )
        self._engine = engine
        self._lock_key = _advisory_key(self._appid)
        self._token: str | None = None
        self._token_expires_at: datetime | None = None
        # Coroutines of this process wait here, not in a queue of database connections.
        self._token_lock = asyncio.Lock()

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- the APIs --------------------------------------------------------------------------

    async def code2session(self, code: str) -> WechatSession:
        """Exchange a `wx.login` code for the user's openid (code2Session)."""
        api = "jscode2session"
        body = await self._call(
            api,
            "GET",
            "/sns/jscode2session",
            params={
                "appid": self._appid,
                "secret": self._secret.get_secret_value(),
                "js_code": code,
                "grant_type": "authorization_code",
            },
        )
        parsed = _parse(Code2SessionBody, body, api)
        return WechatSession(
            openid=parsed.openid, unionid=parsed.unionid or None, session_key=parsed.session_key
        )

    async def phone_number(self, code: str) -> PhoneInfo:
        """Exchange the getPhoneNumber button's code for the user's phone number."""
        api = "getuserphonenumber"
        body = await self._call(
            api,
            "POST",
            "/wxa/business/getuserphonenumber",
            json={"code": code},
            with_token=True,
            phone=True,
        )
        info = _parse(PhoneNumberBody, body, api).phone_info
        return PhoneInfo(
            phone_number=info.phoneNumber,
            pure_phone_number=info.purePhoneNumber,
            country_code=info.countryCode,
        )

    async def send_subscribe_message(
        self,
        *,
        touser: str,
        template_id: str,
        data: Mapping[str, str],
        page: str | None = None,
        miniprogram_state: str = "formal",
        lang: str = "zh_CN",
    ) -> None:
        """Send a subscribe message; `data` maps template keys (`thing1`, ...) to values.

        Raises `WechatError` with `errcode` 43101 when the user has not subscribed, or 47003
        when a value breaks its type's limits; neither is worth retrying.
        """
        payload: dict[str, Any] = {
            "touser": touser,
            "template_id": template_id,
            "data": {key: {"value": value} for key, value in data.items()},
            "miniprogram_state": miniprogram_state,
            "lang": lang,
        }
        if page is not None:
            payload["page"] = page
        await self._call(
            "subscribe_send",
            "POST",
            "/cgi-bin/message/subscribe/send",
            json=payload,
            with_token=True,
        )

    async def msg_sec_check(self, openid: str, content: str, scene: int) -> Suggest:
        """Content check (msgSecCheck v2): "pass", "review" or "risky".

        `scene`: 1 profile, 2 comment, 3 forum, 4 social log. The user must have opened the
        mini-program within the last two hours.
        """
        api = "msg_sec_check"
        body = await self._call(
            api,
            "POST",
            "/wxa/msg_sec_check",
            json={"content": content, "version": 2, "scene": scene, "openid": openid},
            with_token=True,
        )
        return _parse(MsgSecCheckBody, body, api).result.suggest

    # --- the access token --------------------------------------------------------------------

    async def access_token(self, *, force_refresh: bool = False) -> str:
        """A valid access token, from memory, the shared table, or getStableAccessToken.

        `force_refresh=True` says the token this process knows is bad: a new one is fetched
        unless another process already replaced it.
        """
        bad: str | None = None
        if force_refresh:
            bad = self._token or await self._stored_token()
        return await self._access_token(bad=bad)

    async def _access_token(self, *, bad: str | None = None) -> str:
        token = self._cached_token(bad)
        if token is not None:
            return token
        async with self._token_lock:
            # Another coroutine may have refreshed it while this one waited.
            token = self._cached_token(bad)
            if token is not None:
                return token
            token, expires_at = await self._refresh_shared(bad)
            self._token, self._token_expires_at = token, expires_at
            return token

    def _cached_token(self, bad: str | None) -> str | None:
        if self._token is None or self._token == bad or self._token_expires_at is None:
            return None
        if self._token_expires_at - now() <= REFRESH_MARGIN:
            return None
        return self._token

    async def _stored_token(self) -> str | None:
        async with self._engine.connect() as conn:
            return (
                await conn.execute(
                    select(col(WechatAccessToken.access_token)).where(
                        col(WechatAccessToken.appid) == self._appid
                    )
                )
            ).scalar_one_or_none()

    async def _refresh_shared(self, bad: str | None) -> tuple[str, datetime]:
        """The shared token, refreshed by at most one process at a time.

        A short transaction of its own on the engine (never a request's session): the
        advisory lock is held until commit, so the other processes wait, then re-read the
        row and find the fresh token instead of calling WeChat again.
        """
        async with self._engine.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": self._lock_key})
            row = (
                await conn.execute(
                    select(
                        col(WechatAccessToken.access_token), col(WechatAccessToken.expires_at)
                    ).where(col(WechatAccessToken.appid) == self._appid)
                )
            ).first()
            if (
                row is not None
                and row.access_token != bad
                and row.expires_at - now() > REFRESH_MARGIN
            ):
                return row.access_token, row.expires_at
            # Force only when WeChat would otherwise hand back the token it just rejected;
            # an expiring token is renewed by normal mode, which does not cut off the others.
            force = bad is not None and (row is None or row.access_token == bad)
            api = "stable_token"
            body = await self._call(
                api,
                "POST",
                "/cgi-bin/stable_token",
                json={
                    "grant_type": "client_credential",
                    "appid": self._appid,
                    "secret": self._secret.get_secret_value(),
                    "force_refresh": force,
                },
            )
            parsed = _parse(StableTokenBody, body, api)
            refreshed_at = now()
            expires_at = refreshed_at + timedelta(seconds=parsed.expires_in)
            values = {
                "access_token": parsed.access_token,
                "expires_at": expires_at,
                "refreshed_at": refreshed_at,
            }
            statement = insert(WechatAccessToken).values(appid=self._appid, **values)
            await conn.execute(
                statement.on_conflict_do_update(
                    index_elements=[col(WechatAccessToken.appid)], set_=values
                )
            )
            log.info(
                "wechat access token refreshed (force=%s), valid for %d s",
                force,
                parsed.expires_in,
            )
        return parsed.access_token, expires_at

    # --- one call, with WeChat's retry rules ----------------------------------------------

    async def _call(
        self,
        api: str,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
        with_token: bool = False,
        phone: bool = False,
    ) -> dict[str, Any]:
        retry_busy = True
        retry_token = with_token
        bad_token: str | None = None
        while True:
            query = dict(params or {})
            token: str | None = None
            if with_token:
                token = await self._access_token(bad=bad_token)
                query["access_token"] = token
            body = await self._send(api, method, path, params=query, json=json)
            errcode = body["errcode"]
            if errcode == 0:
                return body
            if errcode == SYSTEM_BUSY and retry_busy:
                retry_busy = False
                await asyncio.sleep(self.busy_retry_delay)
                continue
            if errcode in TOKEN_REJECTED and retry_token:
                # Another process may have force-refreshed it, or it expired early.
                retry_token = False
                bad_token = token
                continue
            raise error_for(api, errcode, phone=phone)

    async def _send(
        self,
        api: str,
        method: str,
        path: str,
        *,
        params: dict[str, str],
        json: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """One HTTP exchange; the body with `errcode` normalised to an int (0 on success)."""
        started = time.perf_counter()  # a duration, so monotonic time rather than the clock
        try:
            response = await self._http.request(method, path, params=params or None, json=json)
            response.raise_for_status()
            body = response.json()
            if not isinstance(body, dict):
                raise ValueError("not a JSON object")
            errcode = int(body.get("errcode") or 0)
        except (httpx.HTTPError, ValueError, TypeError) as exc:
            # Only the exception's type: its text would carry the URL with the secret in it.
            log.warning(
                "wechat %s failed: %s after %.0f ms",
                api,
                type(exc).__name__,
                _ms(started),
                extra={"wechat_api": api, "duration_ms": _ms(started)},
            )
            raise WechatUnavailable(api=api) from None
        body["errcode"] = errcode
        duration = _ms(started)
        log.log(
            logging.INFO if errcode == 0 else logging.WARNING,
            "wechat %s errcode=%d in %.0f ms",
            api,
            errcode,
            duration,
            extra={"wechat_api": api, "wechat_errcode": errcode, "duration_ms": duration},
        )
        return body


def _parse(model: type[_Body], body: dict[str, Any], api: str) -> _Body:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        # Field names only: pydantic's message would quote the values (keys, numbers).
        fields = sorted({".".join(map(str, error["loc"])) for error in exc.errors()})
        log.warning("wechat %s answered an unexpected body (fields: %s)", api, ", ".join(fields))
        raise WechatUnavailable(api=api) from None


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


__all__ = ["REFRESH_MARGIN", "PhoneInfo", "WechatClient", "WechatSession"]
