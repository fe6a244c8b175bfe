"""The WeChat client against the emulator over real HTTP, its token shared through PostgreSQL.

Several `WechatClient`s on their own engines stand for several processes of one deployment.
The emulator is shared with the rest of the suite, so call counts are compared before and
after, and every test leaves no injected fault behind.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import delete, event, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from backend.core.clock import clock, now
from backend.core.config import Environment, Settings
from backend.core.database import create_engine
from backend.core.errors import install_error_handlers
from backend.wechat.client import WechatClient, WechatSession
from backend.wechat.emulator import EmulatorServer
from backend.wechat.errors import (
    WechatBusy,
    WechatCodeInvalid,
    WechatError,
    WechatMisconfigured,
    WechatPhoneCodeInvalid,
    WechatRateLimited,
    WechatTokenInvalid,
    WechatUnavailable,
    WechatUserBlocked,
)
from backend.wechat.models import WechatAccessToken

PHONE = "13800138000"


# --- fixtures ------------------------------------------------------------------------------


def _settings(emulator: EmulatorServer, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": Environment.test,
        "wechat_appid": emulator.appid,
        "wechat_secret": SecretStr(emulator.secret),
        "wechat_api_base": emulator.url,
        "log_json": False,
        **overrides,
    }
    return Settings(**values)


@pytest.fixture
async def wechat_clean(emulator: EmulatorServer, engine: AsyncEngine) -> AsyncIterator[None]:
    """No stored access token before the test, no injected fault after it."""
    async with engine.begin() as conn:
        await conn.execute(
            delete(WechatAccessToken).where(col(WechatAccessToken.appid) == emulator.appid)
        )
    try:
        yield
    finally:
        await emulator.clear_faults()


@pytest.fixture
async def wechat(
    emulator: EmulatorServer, engine: AsyncEngine, wechat_clean: None
) -> AsyncIterator[WechatClient]:
    client = WechatClient(_settings(emulator), engine)
    client.busy_retry_delay = 0
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def wechat_engine_elsewhere(engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """A second connection pool on the same database, as another process would have."""
    other = create_engine(engine.url.render_as_string(hide_password=False), pool_size=2)
    try:
        yield other
    finally:
        await other.dispose()


@pytest.fixture
async def wechat_elsewhere(
    emulator: EmulatorServer, wechat_engine_elsewhere: AsyncEngine, wechat_clean: None
) -> AsyncIterator[WechatClient]:
    """The WeChat client of another process of the same deployment."""
    client = WechatClient(_settings(emulator), wechat_engine_elsewhere)
    try:
        yield client
    finally:
        await client.aclose()


async def _calls_since(emulator: EmulatorServer, before: dict[str, int]) -> dict[str, int]:
    after = await emulator.stats()
    return {api: after[api] - before.get(api, 0) for api in after}


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- code2Session --------------------------------------------------------------------------


async def test_code2session_returns_the_openid_and_keeps_the_unionid(
    wechat: WechatClient, emulator: EmulatorServer
) -> None:
    linked = await wechat.code2session(await emulator.login_code("wx-alice", unionid="union-a"))
    assert (linked.openid, linked.unionid) == ("wx-alice", "union-a")
    assert linked.session_key

    plain = await wechat.code2session(await emulator.login_code("wx-bob"))
    assert (plain.openid, plain.unionid) == ("wx-bob", None)
    assert plain.session_key != linked.session_key


async def test_a_used_code_is_refused(wechat: WechatClient, emulator: EmulatorServer) -> None:
    code = await emulator.login_code("wx-carol")
    await wechat.code2session(code)

    with pytest.raises(WechatCodeInvalid) as caught:
        await wechat.code2session(code)
    assert (caught.value.status, caught.value.code) == (400, "wechat.code_invalid")
    assert caught.value.errcode == 40029
    assert caught.value.render("zh-CN") == "登录码无效或已使用，请重新登录"


async def test_a_code_expires_five_minutes_after_it_was_issued(
    wechat: WechatClient, emulator: EmulatorServer
) -> None:
    in_time = await emulator.login_code("wx-dave")
    too_late = await emulator.login_code("wx-dave")

    clock.advance(timedelta(seconds=299))
    assert (await wechat.code2session(in_time)).openid == "wx-dave"

    clock.advance(timedelta(seconds=2))
    with pytest.raises(WechatCodeInvalid):
        await wechat.code2session(too_late)


@pytest.mark.parametrize(
    ("override", "errcode"),
    [
        ({"wechat_secret": SecretStr("not-the-secret")}, 40125),
        ({"wechat_appid": "wx-other"}, 40013),
    ],
)
async def test_wrong_app_credentials_are_a_configuration_problem(
    emulator: EmulatorServer,
    engine: AsyncEngine,
    wechat_clean: None,
    override: dict[str, Any],
    errcode: int,
) -> None:
    code = await emulator.login_code("wx-erin")
    client = WechatClient(_settings(emulator, **override), engine)
    try:
        with pytest.raises(WechatMisconfigured) as caught:
            await client.code2session(code)
    finally:
        await client.aclose()
    assert (caught.value.status, caught.value.code) == (502, "wechat.misconfigured")
    assert caught.value.errcode == errcode
    # Not the resident's fault: nothing tells them to log in again.
    assert "重新登录" not in caught.value.render("zh-CN")


async def test_the_minute_quota_asks_to_retry_after_a_minute_without_retrying(
    wechat: WechatClient, emulator: EmulatorServer
) -> None:
    code = await emulator.login_code("wx-frank")
    before = await emulator.stats()
    await emulator.inject_fault("jscode2session", 45011)

    with pytest.raises(WechatRateLimited) as caught:
        await wechat.code2session(code)
    assert (caught.value.status, caught.value.code) == (429, "wechat.rate_limited")
    assert caught.value.headers == {"Retry-After": "60"}
    assert caught.value.extra()["retry_after"] == 60
    assert (await _calls_since(emulator, before))["jscode2session"] == 1


async def test_a_blocked_user_is_told_so(wechat: WechatClient, emulator: EmulatorServer) -> None:
    code = await emulator.login_code("wx-grace")
    await emulator.inject_fault("jscode2session", 40226)

    with pytest.raises(WechatUserBlocked) as caught:
        await wechat.code2session(code)
    assert (caught.value.status, caught.value.code) == (403, "wechat.user_blocked")


async def test_system_busy_once_is_retried(wechat: WechatClient, emulator: EmulatorServer) -> None:
    code = await emulator.login_code("wx-heidi")
    before = await emulator.stats()
    await emulator.inject_fault("jscode2session", -1, times=1)

    assert (await wechat.code2session(code)).openid == "wx-heidi"
    assert (await _calls_since(emulator, before))["jscode2session"] == 2


async def test_system_busy_twice_gives_up_after_one_retry(
    wechat: WechatClient, emulator: EmulatorServer
) -> None:
    code = await emulator.login_code("wx-ivan")
    before = await emulator.stats()
    await emulator.inject_fault("jscode2session", -1, times=5)

    with pytest.raises(WechatBusy) as caught:
        await wechat.code2session(code)
    assert (caught.value.status, caught.value.code) == (503, "wechat.busy")
    assert (await _calls_since(emulator, before))["jscode2session"] == 2


async def test_an_unknown_errcode_names_it(wechat: WechatClient, emulator: EmulatorServer) -> None:
    code = await emulator.login_code("wx-judy")
    await emulator.inject_fault("jscode2session", 45009)

    with pytest.raises(WechatError) as caught:
        await wechat.code2session(code)
    assert type(caught.value) is WechatError
    assert (caught.value.status, caught.value.code, caught.value.errcode) == (
        502,
        "wechat.error",
        45009,
    )
    assert "45009" in caught.value.render("zh-CN") and "45009" in caught.value.render("en")


# --- network failures ------------------------------------------------------------------------


async def test_an_unreachable_wechat_is_unavailable(
    emulator: EmulatorServer, engine: AsyncEngine
) -> None:
    settings = _settings(emulator, wechat_api_base=f"http://127.0.0.1:{_closed_port()}")
    client = WechatClient(settings, engine)
    try:
        started = time.perf_counter()
        with pytest.raises(WechatUnavailable) as caught:
            await client.code2session("any-code")
        assert time.perf_counter() - started < 2
    finally:
        await client.aclose()
    assert (caught.value.status, caught.value.code) == (503, "wechat.unavailable")
    assert caught.value.errcode is None
    assert caught.value.extra() == {"retry_after": 10}


async def test_a_slow_wechat_times_out_as_unavailable(
    emulator: EmulatorServer, engine: AsyncEngine, wechat_clean: None
) -> None:
    code = await emulator.login_code("wx-kim")
    await emulator.inject_fault("jscode2session", None, delay=1.0)
    client = WechatClient(_settings(emulator, wechat_timeout_seconds=0.2), engine)
    try:
        with pytest.raises(WechatUnavailable):
            await client.code2session(code)
    finally:
        await client.aclose()


# --- the access token ------------------------------------------------------------------------


async def _stored(engine: AsyncEngine, appid: str) -> Any:
    async with engine.connect() as conn:
        return (
            await conn.execute(
                select(WechatAccessToken).where(col(WechatAccessToken.appid) == appid)
            )
        ).first()


async def test_the_access_token_is_cached_in_memory_and_in_the_database(
    wechat: WechatClient,
    wechat_elsewhere: WechatClient,
    emulator: EmulatorServer,
    engine: AsyncEngine,
) -> None:
    before = await emulator.stats()
    token = await wechat.access_token()
    assert await wechat.access_token() == token
    # Another process finds it in the table instead of asking WeChat.
    assert await wechat_elsewhere.access_token() == token
    assert (await _calls_since(emulator, before))["stable_token"] == 1

    row = await _stored(engine, emulator.appid)
    assert row is not None and row.access_token == token
    # WeChat's remaining lifetime: up to 7200 s, less if another test fetched it earlier.
    assert timedelta(minutes=5) < row.expires_at - now() <= timedelta(seconds=7200)
    assert abs(now() - row.refreshed_at) < timedelta(seconds=30)


async def test_the_access_token_is_renewed_five_minutes_before_it_expires(
    wechat: WechatClient, emulator: EmulatorServer
) -> None:
    # Start from a brand-new token: earlier tests may have left one with less time left.
    await emulator.expire_tokens()
    before = await emulator.stats()
    first = await wechat.access_token()

    clock.advance(timedelta(seconds=7200 - 360))  # six minutes left: still good
    assert await wechat.access_token() == first
    assert (await _calls_since(emulator, before))["stable_token"] == 1

    clock.advance(timedelta(seconds=70))  # under five minutes left
    second = await wechat.access_token()
    assert second != first
    assert (await _calls_since(emulator, before))["stable_token"] == 2
    assert await wechat.access_token() == second


@pytest.mark.parametrize("errcode", [40001, 42001])
async def test_a_rejected_token_is_refreshed_once_and_the_call_succeeds(
    wechat: WechatClient, emulator: EmulatorServer, errcode: int
) -> None:
    old = await wechat.access_token()
    code = await emulator.phone_code("wx-leo", PHONE)
    before = await emulator.stats()
    if errcode == 42001:
        await emulator.expire_tokens()
    else:
        await emulator.inject_fault("getuserphonenumber", 40001)

    info = await wechat.phone_number(code)

    assert (info.phone_number, info.pure_phone_number, info.country_code) == (PHONE, PHONE, "86")
    calls = await _calls_since(emulator, before)
    assert (calls["getuserphonenumber"], calls["stable_token"]) == (2, 1)
    assert await wechat.access_token() != old


async def test_a_token_rejected_after_refreshing_gives_up(
    wechat: WechatClient, emulator: EmulatorServer
) -> None:
    await wechat.access_token()
    code = await emulator.phone_code("wx-mia", PHONE)
    before = await emulator.stats()
    await emulator.inject_fault("getuserphonenumber", 40001, times=3)

    with pytest.raises(WechatTokenInvalid) as caught:
        await wechat.phone_number(code)
    assert (caught.value.status, caught.value.code) == (502, "wechat.token_invalid")
    calls = await _calls_since(emulator, before)
    assert (calls["getuserphonenumber"], calls["stable_token"]) == (2, 1)


async def test_a_token_replaced_by_another_process_is_picked_up_without_asking_wechat(
    wechat: WechatClient, wechat_elsewhere: WechatClient, emulator: EmulatorServer
) -> None:
    old = await wechat.access_token()
    # The other process force-refreshes: WeChat now refuses `old` with 40001.
    new = await wechat_elsewhere.access_token(force_refresh=True)
    assert new != old
    code = await emulator.phone_code("wx-nora", PHONE)
    before = await emulator.stats()

    assert (await wechat.phone_number(code)).pure_phone_number == PHONE

    calls = await _calls_since(emulator, before)
    assert (calls["getuserphonenumber"], calls["stable_token"]) == (2, 0)
    assert await wechat.access_token() == new


async def test_many_callers_in_two_processes_refresh_the_token_once(
    emulator: EmulatorServer, engine: AsyncEngine, wechat_clean: None
) -> None:
    url = engine.url.render_as_string(hide_password=False)
    engines = [create_engine(url, pool_size=5), create_engine(url, pool_size=5)]
    transactions = [0, 0]
    for index, each in enumerate(engines):

        def count(conn: Any, index: int = index) -> None:
            transactions[index] += 1

        event.listen(each.sync_engine, "begin", count)
    clients = [WechatClient(_settings(emulator), each) for each in engines]
    before = await emulator.stats()
    # WeChat answers slowly, so every caller arrives while the first refresh is under way.
    await emulator.inject_fault("stable_token", None, delay=0.3)
    try:
        tokens = await asyncio.gather(*(c.access_token() for c in clients for _ in range(20)))
    finally:
        for client in clients:
            await client.aclose()
        for each in engines:
            await each.dispose()

    assert len(set(tokens)) == 1
    assert (await _calls_since(emulator, before))["stable_token"] == 1
    # Coroutines of one process wait on its own lock, not each in a database transaction.
    assert transactions == [1, 1]


async def test_a_failed_refresh_stores_nothing(
    wechat: WechatClient, emulator: EmulatorServer, engine: AsyncEngine
) -> None:
    await emulator.inject_fault("stable_token", 45011)
    with pytest.raises(WechatRateLimited):
        await wechat.access_token()
    assert await _stored(engine, emulator.appid) is None
    # The next call tries again rather than remembering the failure.
    assert await wechat.access_token()


# --- phone number, messages, content check ------------------------------------------------


async def test_a_phone_code_is_single_use(wechat: WechatClient, emulator: EmulatorServer) -> None:
    code = await emulator.phone_code("wx-olga", PHONE)
    assert (await wechat.phone_number(code)).pure_phone_number == PHONE

    with pytest.raises(WechatPhoneCodeInvalid) as caught:
        await wechat.phone_number(code)
    # The same stable code as a bad login code, worded for the phone-number button.
    assert caught.value.code == "wechat.code_invalid"
    assert "手机号" in caught.value.render("zh-CN")


async def test_subscribe_messages_are_sent_and_their_values_checked(
    wechat: WechatClient, emulator: EmulatorServer
) -> None:
    good = {
        "thing1": "小区东门路灯不亮",
        "phrase2": "已受理",
        "character_string3": "RPT-20261122-000123",
        "time4": "2026-11-22 15:01",
    }
    await wechat.send_subscribe_message(
        touser="wx-pete", template_id="tmpl-case", data=good, page="pages/case/detail?id=1"
    )
    sent = await emulator.messages("wx-pete")
    assert len(sent) == 1
    assert {key: item["value"] for key, item in sent[0]["data"].items()} == good
    assert (sent[0]["template_id"], sent[0]["page"]) == ("tmpl-case", "pages/case/detail?id=1")

    for key, value in [
        ("thing1", "小区东门路灯不亮已经有三天了，晚上出行很不方便"),  # thing: at most 20
        ("phrase2", "已经受理完成"),  # phrase: at most 5 Chinese characters
        ("character_string3", "案件编号123"),  # character_string: no Chinese
    ]:
        with pytest.raises(WechatError) as caught:
            await wechat.send_subscribe_message(
                touser="wx-pete", template_id="tmpl-case", data={**good, key: value}
            )
        assert caught.value.errcode == 47003, key
    assert len(await emulator.messages("wx-pete")) == 1


async def test_msg_sec_check_returns_the_suggestion(wechat: WechatClient) -> None:
    assert await wechat.msg_sec_check("wx-quinn", "楼下路灯坏了，请尽快修理", 2) == "pass"
    assert await wechat.msg_sec_check("wx-quinn", "有人在地下室聚众赌博", 2) == "risky"
    assert await wechat.msg_sec_check("wx-quinn", "兼职日结，加微信详聊", 2) == "review"


# --- what residents and logs see ---------------------------------------------------------------


async def test_secrets_stay_out_of_reprs_and_logs(
    wechat: WechatClient, emulator: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    login_code = await emulator.login_code("wx-rita")
    session = await wechat.code2session(login_code)
    phone_code = await emulator.phone_code("wx-rita", PHONE)
    info = await wechat.phone_number(phone_code)
    token = await wechat.access_token()

    assert session.session_key not in repr(session) and session.session_key not in str(session)
    assert repr(session) == WechatSession("wx-rita", None, "x").__repr__()
    assert PHONE not in repr(info) and PHONE not in str(info)
    logged = caplog.text
    for secret in (session.session_key, login_code, phone_code, emulator.secret, token, PHONE):
        assert secret not in logged
    # The calls were logged, including httpx's request lines, only without their secrets.
    apis = {getattr(r, "wechat_api", None) for r in caplog.records if r.name == "shanzhi.wechat"}
    assert {"jscode2session", "getuserphonenumber", "stable_token"} <= apis
    assert any(
        r.name == "httpx" and "/sns/jscode2session" in r.getMessage() for r in caplog.records
    )


async def test_wechat_errors_render_as_problems_in_the_residents_language() -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/busy-minute")
    async def busy_minute() -> None:
        raise WechatRateLimited()

    @app.get("/other")
    async def other() -> None:
        raise WechatError(47003)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        limited = await http.get("/busy-minute", headers={"Accept-Language": "en"})
        other_zh = await http.get("/other")

    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "60"
    assert limited.headers["content-type"] == "application/problem+json"
    assert limited.json()["code"] == "wechat.rate_limited"
    assert limited.json()["detail"].startswith("Too many requests to WeChat")
    assert other_zh.status_code == 502
    assert other_zh.json()["code"] == "wechat.error"
    assert "47003" in other_zh.json()["detail"] and "微信" in other_zh.json()["detail"]
