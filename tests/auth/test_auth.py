"""Login through the WeChat emulator, token rotation, phone binding, roles on regions."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.models import RefreshToken, User
from backend.auth.principal import path_within
from backend.core.clock import clock
from backend.core.security import PersonalData
from backend.wechat.emulator import EmulatorServer
from tests.conftest import Login, assert_problem, bearer

# --- login ---------------------------------------------------------------------------


async def test_login_creates_the_user_once_and_me_shows_them(
    client: httpx.AsyncClient, login: Login, session: AsyncSession
) -> None:
    first = await login("resident-a", unionid="union-a")
    second = await login("resident-a")
    assert first["user"]["id"] == second["user"]["id"]
    assert first["token_type"] == "Bearer" and first["expires_in"] > 0
    me = await client.get("/v1/me", headers=bearer(second))
    assert me.status_code == 200
    assert me.json()["id"] == first["user"]["id"]
    assert me.json()["phone"] is None and me.json()["roles"] == []
    user = (await session.execute(select(User).where(User.openid == "resident-a"))).scalar_one()
    # The unionid arrives only sometimes; once known it is kept.
    assert user.unionid == "union-a"


async def test_login_never_reveals_the_session_key(
    client: httpx.AsyncClient, emulator: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    code = await emulator.login_code("resident-b")
    response = await client.post("/v1/auth/wechat/login", json={"code": code})
    assert response.status_code == 200
    assert "session_key" not in response.text
    assert "session_key" not in caplog.text.replace("session_key=<hidden>", "")
    assert code not in caplog.text


async def test_a_used_code_is_refused(client: httpx.AsyncClient, emulator: EmulatorServer) -> None:
    code = await emulator.login_code("resident-c")
    assert (await client.post("/v1/auth/wechat/login", json={"code": code})).status_code == 200
    again = await client.post("/v1/auth/wechat/login", json={"code": code})
    assert_problem(again, 400, "wechat.code_invalid")


async def test_an_expired_code_is_refused(
    client: httpx.AsyncClient, emulator: EmulatorServer
) -> None:
    code = await emulator.login_code("resident-d")
    clock.advance(timedelta(minutes=5, seconds=1))
    response = await client.post("/v1/auth/wechat/login", json={"code": code})
    assert_problem(response, 400, "wechat.code_invalid")


@pytest.mark.parametrize(
    ("errcode", "status", "code"),
    [
        (45011, 429, "wechat.rate_limited"),
        (40226, 403, "wechat.user_blocked"),
        (40029, 400, "wechat.code_invalid"),
    ],
)
async def test_wechat_errors_become_clear_problems(
    client: httpx.AsyncClient, emulator: EmulatorServer, errcode: int, status: int, code: str
) -> None:
    login_code = await emulator.login_code("resident-e")
    await emulator.inject_fault("jscode2session", errcode)
    try:
        response = await client.post("/v1/auth/wechat/login", json={"code": login_code})
    finally:
        await emulator.clear_faults()
    body = assert_problem(response, status, code)
    if errcode == 45011:
        assert int(response.headers["retry-after"]) > 0
    assert "errcode" not in body["detail"] or code == "wechat.error"


async def test_wechat_busy_is_retried_once(
    client: httpx.AsyncClient, emulator: EmulatorServer
) -> None:
    code = await emulator.login_code("resident-f")
    await emulator.inject_fault("jscode2session", -1, times=1)
    response = await client.post("/v1/auth/wechat/login", json={"code": code})
    assert response.status_code == 200, response.text

    code = await emulator.login_code("resident-f")
    await emulator.inject_fault("jscode2session", -1, times=2)
    try:
        response = await client.post("/v1/auth/wechat/login", json={"code": code})
    finally:
        await emulator.clear_faults()
    body = assert_problem(response, 503, "wechat.busy")
    assert response.headers["retry-after"] == str(body["retry_after"]) == "5"


async def test_malformed_login_is_a_422_problem_in_both_languages(
    client: httpx.AsyncClient,
) -> None:
    zh = await client.post("/v1/auth/wechat/login", json={})
    body = assert_problem(zh, 422, "request.invalid")
    assert "请求内容不符合要求" in body["detail"]
    assert body["errors"][0]["loc"] == ["body", "code"]
    en = await client.post(
        "/v1/auth/wechat/login", json={"code": ""}, headers={"Accept-Language": "en-US,en;q=0.9"}
    )
    assert "The request is invalid" in assert_problem(en, 422, "request.invalid")["detail"]
    assert en.headers["content-language"] == "en"


# --- tokens --------------------------------------------------------------------------


async def test_no_token_answers_401_in_the_callers_language(client: httpx.AsyncClient) -> None:
    zh = await client.get("/v1/me")
    assert assert_problem(zh, 401, "auth.unauthenticated")["detail"] == "请先登录"
    assert zh.headers["www-authenticate"] == "Bearer"
    en = await client.get("/v1/me", headers={"Accept-Language": "en"})
    assert assert_problem(en, 401, "auth.unauthenticated")["detail"] == "Please log in first"


async def test_tokens_follow_the_project_clock(client: httpx.AsyncClient, login: Login) -> None:
    clock.advance(timedelta(days=3))
    tokens = await login("resident-time-traveller")
    assert (await client.get("/v1/me", headers=bearer(tokens))).status_code == 200


async def test_expired_access_token_is_refused(client: httpx.AsyncClient, login: Login) -> None:
    tokens = await login("resident-g")
    clock.advance(timedelta(minutes=15, seconds=1))
    assert_problem(await client.get("/v1/me", headers=bearer(tokens)), 401, "auth.token_expired")


def _forge(tokens: dict[str, Any], **changes: Any) -> str:
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    claims.update(changes)
    return claims  # type: ignore[no-any-return]


@pytest.mark.parametrize("attack", ["tampered", "other_secret", "alg_none", "hs512", "no_exp"])
async def test_forged_tokens_are_refused(
    client: httpx.AsyncClient, login: Login, attack: str, app: Any
) -> None:
    tokens = await login("resident-h")
    victim = await login("resident-h2")
    secret = app.state.settings.jwt_secret.get_secret_value()
    claims: dict[str, Any] = _forge(tokens)
    if attack == "tampered":
        # Same signature, someone else's subject.
        header, _, signature = tokens["access_token"].split(".")
        other = jwt.encode({**claims, "sub": victim["user"]["id"]}, "x", algorithm="HS256")
        token = ".".join([header, other.split(".")[1], signature])
    elif attack == "other_secret":
        token = jwt.encode(claims, "not-the-server-secret-at-all-0123456789", algorithm="HS256")
    elif attack == "alg_none":
        token = jwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]
    elif attack == "hs512":
        token = jwt.encode(claims, secret, algorithm="HS512")
    else:
        claims.pop("exp")
        token = jwt.encode(claims, secret, algorithm="HS256")
    response = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert_problem(response, 401, "auth.token_invalid")


async def test_refresh_rotates_and_reuse_revokes_the_family(
    client: httpx.AsyncClient, login: Login, session: AsyncSession
) -> None:
    first = await login("resident-i")
    rotated = await client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert rotated.status_code == 200
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert (await client.get("/v1/me", headers=bearer(second))).status_code == 200

    # A replay long after the rotation is theft: the whole family dies.
    clock.advance(timedelta(minutes=1))
    replay = await client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert_problem(replay, 401, "auth.refresh_reused")
    after = await client.post("/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert_problem(after, 401, "auth.refresh_invalid")
    revoked = (
        await session.execute(
            select(RefreshToken.revoked_at).where(RefreshToken.user_id == first["user"]["id"])
        )
    ).scalars()
    assert all(r is not None for r in revoked)


async def test_a_quick_retry_of_a_refresh_is_not_theft(
    client: httpx.AsyncClient, login: Login
) -> None:
    tokens = await login("resident-j")
    one = await client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    two = await client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert one.status_code == 200 and two.status_code == 200
    third = await client.post(
        "/v1/auth/refresh", json={"refresh_token": one.json()["refresh_token"]}
    )
    assert third.status_code == 200


async def test_logout_ends_the_refresh_family(client: httpx.AsyncClient, login: Login) -> None:
    tokens = await login("resident-k")
    out = await client.post("/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    assert out.status_code == 204
    again = await client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert_problem(again, 401, "auth.refresh_invalid")


async def test_an_unknown_refresh_token_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/auth/refresh", json={"refresh_token": "x" * 43})
    assert_problem(response, 401, "auth.refresh_invalid")


# --- phone -----------------------------------------------------------------------------


async def test_phone_is_stored_encrypted_shown_masked_and_never_logged(
    client: httpx.AsyncClient,
    login: Login,
    emulator: EmulatorServer,
    session: AsyncSession,
    app: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    tokens = await login("resident-l")
    code = await emulator.phone_code("resident-l", "13800135678")
    response = await client.post("/v1/me/phone", json={"code": code}, headers=bearer(tokens))
    assert response.status_code == 200, response.text
    assert response.json()["phone"] == "138****5678"
    assert "13800135678" not in response.text
    assert "13800135678" not in caplog.text
    row = (
        await session.execute(
            text("SELECT phone_ciphertext, phone_hash FROM user_account WHERE openid = :o"),
            {"o": "resident-l"},
        )
    ).one()
    assert b"13800135678" not in bytes(row.phone_ciphertext)
    personal_data: PersonalData = app.state.personal_data
    assert personal_data.decrypt(bytes(row.phone_ciphertext)) == "13800135678"
    assert row.phone_hash == personal_data.lookup_hash("13800135678")
    me = await client.get("/v1/me", headers=bearer(tokens))
    assert me.json()["phone"] == "138****5678"


async def test_a_phone_code_is_single_use(
    client: httpx.AsyncClient, login: Login, emulator: EmulatorServer
) -> None:
    tokens = await login("resident-m")
    code = await emulator.phone_code("resident-m", "13900001111")
    ok = await client.post("/v1/me/phone", json={"code": code}, headers=bearer(tokens))
    assert ok.status_code == 200
    again = await client.post("/v1/me/phone", json={"code": code}, headers=bearer(tokens))
    assert_problem(again, 400, "wechat.code_invalid")


# --- roles on regions ------------------------------------------------------------------


async def _grant(client: httpx.AsyncClient, tokens: dict[str, Any], **body: Any) -> httpx.Response:
    return await client.post("/v1/admin/role-grants", json=body, headers=bearer(tokens))


@pytest.mark.usefixtures("demo")
async def test_me_lists_the_demo_roles(client: httpx.AsyncClient, login: Login) -> None:
    tokens = await login("demo-district-admin")
    roles = (await client.get("/v1/me", headers=bearer(tokens))).json()["roles"]
    assert roles == [{"role": "admin", "region_code": "gz.tianhe", "region_name": "天河区"}]


@pytest.mark.usefixtures("demo")
async def test_a_district_admin_grants_only_inside_their_district(
    client: httpx.AsyncClient, login: Login
) -> None:
    admin = await login("demo-district-admin")
    await login("demo-resident-2")
    community = await _first_community(client, "gz.tianhe")
    inside = await _grant(
        client, admin, openid="demo-resident-2", role="grid_worker", region_code=community
    )
    assert inside.status_code == 201, inside.text
    assert inside.json()["region_code"] == community

    duplicate = await _grant(
        client, admin, openid="demo-resident-2", role="grid_worker", region_code=community
    )
    assert_problem(duplicate, 409, "auth.grant_duplicate")

    elsewhere = await _first_community(client, "gz.yuexiu")
    outside = await _grant(
        client, admin, openid="demo-resident-2", role="grid_worker", region_code=elsewhere
    )
    # Outside their tree the region does not exist for them.
    assert_problem(outside, 404, "regions.not_found")

    peer = await _grant(
        client, admin, openid="demo-resident-2", role="admin", region_code="gz.tianhe"
    )
    assert_problem(peer, 403, "auth.grant_not_below")

    # The new grid worker now reaches that community, and nothing in Yuexiu.
    worker = await login("demo-resident-2")
    roles = (await client.get("/v1/me", headers=bearer(worker))).json()["roles"]
    assert roles == [
        {"role": "grid_worker", "region_code": community, "region_name": roles[0]["region_name"]}
    ]


@pytest.mark.usefixtures("demo")
async def test_staff_without_admin_cannot_grant_list_or_revoke(
    client: httpx.AsyncClient, login: Login
) -> None:
    staff = await login("demo-community-staff")
    me = (await client.get("/v1/me", headers=bearer(staff))).json()
    own_community = me["roles"][0]["region_code"]
    attempt = await _grant(
        client, staff, openid="demo-resident", role="grid_worker", region_code=own_community
    )
    assert_problem(attempt, 404, "regions.not_found")
    listing = await client.get("/v1/admin/role-grants", headers=bearer(staff))
    assert listing.status_code == 200 and listing.json()["items"] == []

    city = await login("demo-city-admin")
    grants = (await client.get("/v1/admin/role-grants", headers=bearer(city))).json()["items"]
    target = next(g for g in grants if g["region_code"] == own_community)
    revoke = await client.delete(f"/v1/admin/role-grants/{target['id']}", headers=bearer(staff))
    assert_problem(revoke, 404, "auth.grant_not_found")


@pytest.mark.usefixtures("demo")
async def test_grants_are_listed_and_revoked_within_scope(
    client: httpx.AsyncClient, login: Login
) -> None:
    district = await login("demo-district-admin")
    city = await login("demo-city-admin")
    listed = (await client.get("/v1/admin/role-grants", headers=bearer(district))).json()["items"]
    assert listed, "the district admin sees the grants below Tianhe"
    assert all(path_within(g["region_code"], "gz.tianhe") for g in listed)

    everything = (await client.get("/v1/admin/role-grants?limit=2", headers=bearer(city))).json()
    assert len(everything["items"]) == 2 and everything["next_cursor"]
    rest = (
        await client.get(
            f"/v1/admin/role-grants?limit=100&cursor={everything['next_cursor']}",
            headers=bearer(city),
        )
    ).json()
    ids = [g["id"] for g in everything["items"] + rest["items"]]
    assert len(ids) == len(set(ids))

    grid_worker = next(g for g in listed if g["role"] == "grid_worker")
    gone = await client.delete(
        f"/v1/admin/role-grants/{grid_worker['id']}", headers=bearer(district)
    )
    assert gone.status_code == 204
    worker = await login("demo-grid-worker")
    assert (await client.get("/v1/me", headers=bearer(worker))).json()["roles"] == []

    # The district admin cannot revoke their own admin grant (only a higher admin can).
    own = (await client.get("/v1/admin/role-grants", headers=bearer(city))).json()["items"]
    district_grant = next(g for g in own if g["region_code"] == "gz.tianhe")
    self_revoke = await client.delete(
        f"/v1/admin/role-grants/{district_grant['id']}", headers=bearer(district)
    )
    assert_problem(self_revoke, 403, "auth.grant_not_below")


async def _first_community(client: httpx.AsyncClient, district: str) -> str:
    region = (await client.get(f"/v1/regions/{district}")).json()
    street = region["children"][0]["code"]
    return str((await client.get(f"/v1/regions/{street}")).json()["children"][0]["code"])


# What ltree, lquery and ltxtquery read as syntax, quoting and escapes, and what PostgreSQL
# text cannot hold: none of it may reach the database from a region code.
LTREE_SYNTAX = ['"', "\\", ".", "*", "!", "|", "&", "@", "%", "{", "}", ",", "(", ")", "?", "~"]
LTREE_SYNTAX += ["-", " ", "\x00"]


@pytest.mark.usefixtures("demo")
async def test_a_malformed_region_filter_is_refused_before_the_database(
    client: httpx.AsyncClient, login: Login
) -> None:
    city = bearer(await login("demo-city-admin"))
    quote = await client.get("/v1/admin/role-grants?region=%22", headers=city)
    assert_problem(quote, 422, "request.invalid")
    for char in LTREE_SYNTAX:
        for region in (char, f"gz.tianhe{char}", f"gz{char}tianhe"):
            if region == "gz.tianhe":
                continue
            response = await client.get(
                "/v1/admin/role-grants", params={"region": region}, headers=city
            )
            assert_problem(response, 422, "request.invalid")


@pytest.mark.usefixtures("demo")
@pytest.mark.parametrize(
    "body",
    [
        {"openid": "demo-resident-2", "region_code": "gz.tianhe|gz"},
        {"openid": "demo-resident-2", "region_code": "gz.tianhe\x00"},
        {"openid": "demo-resident\x002", "region_code": "gz.tianhe.shipai.gangding"},
    ],
    ids=["ltree-alternation", "nul-in-region", "nul-in-openid"],
)
async def test_a_malformed_grant_is_refused_before_the_database(
    client: httpx.AsyncClient, login: Login, body: dict[str, str]
) -> None:
    city = bearer(await login("demo-city-admin"))
    response = await client.post(
        "/v1/admin/role-grants", json={**body, "role": "grid_worker"}, headers=city
    )
    assert_problem(response, 422, "request.invalid")
