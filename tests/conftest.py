"""Test fixtures: a real PostgreSQL, a real S3 server and the WeChat emulator.

PostgreSQL is `SHANZHI_TEST_DATABASE_URL` when set, else an embedded server; either way the
suite works in a fresh database built by `alembic upgrade head` and dropped at the end.
Each test runs inside one transaction that is rolled back, so tests can run in any order.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from backend.app import create_app
from backend.cases.categories.service import forget_catalogue
from backend.core.clock import clock
from backend.core.config import Environment, Settings
from backend.core.database import create_engine
from backend.core.migrate import upgrade
from backend.embedded.postgres import EmbeddedPostgres
from backend.embedded.s3 import EmbeddedS3
from backend.wechat.emulator import EmulatorServer

TEST_APPID = "wx-shanzhi-test"
TEST_APP_SECRET = "test-app-secret"


@pytest.fixture(scope="session")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="shanzhi-test-") as path:
        yield Path(path)


@pytest.fixture(scope="session")
def server_url(workdir: Path) -> Iterator[str]:
    """A PostgreSQL server: the one named by SHANZHI_TEST_DATABASE_URL, or an embedded one."""
    external = os.environ.get("SHANZHI_TEST_DATABASE_URL")
    if external:
        yield external.replace("postgresql://", "postgresql+asyncpg://", 1)
        return
    postgres = EmbeddedPostgres(workdir)
    try:
        yield postgres.start()
    finally:
        postgres.stop()


def _asyncpg_kwargs(url: str, database: str) -> dict[str, Any]:
    parsed = make_url(url)
    return {
        "host": parsed.query.get("host") or parsed.host,
        "port": parsed.port,
        "user": parsed.username,
        "password": parsed.password,
        "database": database,
    }


@pytest.fixture(scope="session")
async def database_url(server_url: str) -> AsyncIterator[str]:
    """A fresh database for this run, at the head migration."""
    name = f"shanzhi_test_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(**_asyncpg_kwargs(server_url, "postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url, pool_size=2)
    await upgrade(engine)
    await engine.dispose()
    try:
        yield url
    finally:
        admin = await asyncpg.connect(**_asyncpg_kwargs(server_url, "postgres"))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture(scope="session")
def s3(workdir: Path) -> Iterator[EmbeddedS3]:
    server = EmbeddedS3(workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorServer]:
    server = EmulatorServer(appid=TEST_APPID, secret=TEST_APP_SECRET)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# Every test calls from the same address (the ASGI transport's 127.0.0.1), and the suite
# logs in, refreshes and reads the public routes hundreds of times a minute: the limits per
# client address are lifted here. Tests of those limits remove the override for a moment
# and call from an address of their own (`from_address`).
ADDRESS_LIMITS_LIFTED = dict.fromkeys(
    (
        "login_address",
        "refresh_address",
        "logout_address",
        "categories_address",
        "region_address",
        "locate_address",
    ),
    "1000000/minute",
)


@pytest.fixture(scope="session")
def settings(
    database_url: str, s3: EmbeddedS3, emulator: EmulatorServer, workdir: Path
) -> Settings:
    return Settings(
        env=Environment.test,
        data_dir=workdir,
        database_url=database_url,
        s3_endpoint=s3.endpoint,
        s3_access_key=s3.access_key,
        s3_secret_key=SecretStr(s3.secret_key),
        s3_bucket="shanzhi-test",
        wechat_appid=TEST_APPID,
        wechat_secret=SecretStr(TEST_APP_SECRET),
        wechat_api_base=emulator.url,
        log_json=False,
        rate_limits=dict(ADDRESS_LIMITS_LIFTED),
    )


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
def engine(app: FastAPI) -> AsyncEngine:
    return app.state.engine  # type: ignore[no-any-return]


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as conn:
        transaction = await conn.begin()
        try:
            yield conn
        finally:
            if transaction.is_active:
                await transaction.rollback()


def _test_session(connection: AsyncConnection) -> AsyncSession:
    # Each commit inside the app becomes a savepoint of the test's outer transaction.
    return AsyncSession(
        bind=connection,
        join_transaction_mode="create_savepoint",
        expire_on_commit=False,
        autoflush=False,
    )


@pytest.fixture
async def session(connection: AsyncConnection) -> AsyncIterator[AsyncSession]:
    async with _test_session(connection) as db:
        yield db


@pytest.fixture(autouse=True)
def _reset_clock() -> Iterator[None]:
    yield
    clock.reset()


@pytest.fixture
async def client(app: FastAPI, connection: AsyncConnection) -> AsyncIterator[httpx.AsyncClient]:
    """The app over ASGI, its sessions bound to this test's transaction."""
    original = app.state.session_factory
    app.state.session_factory = lambda: _test_session(connection)
    # Categories made by an earlier (rolled back) test must not linger in the cache.
    forget_catalogue()
    async with _test_session(connection) as db:
        await app.state.grid_map.reload(db)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http
    finally:
        app.state.session_factory = original
        async with app.state.session_factory() as db:
            await app.state.grid_map.reload(db)


FromAddress = Callable[[str], httpx.AsyncClient]


@pytest.fixture
async def from_address(app: FastAPI, client: httpx.AsyncClient) -> AsyncIterator[FromAddress]:
    """Clients of the app (on this test's transaction, as `client`) calling from another
    address: `from_address("203.0.113.7")`."""
    opened: list[httpx.AsyncClient] = []

    def _open(host: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(host, 50000))
        http = httpx.AsyncClient(transport=transport, base_url="http://test")
        opened.append(http)
        return http

    yield _open
    for http in opened:
        await http.aclose()


@pytest.fixture
async def demo(client: httpx.AsyncClient, app: FastAPI, session: AsyncSession) -> None:
    """The demo city (regions, grids, demo users and their roles) inside this test."""
    from backend.demo.loading import load_demo_data

    await load_demo_data(session)
    await session.commit()
    await app.state.grid_map.reload(session)


Login = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def login(client: httpx.AsyncClient, emulator: EmulatorServer) -> Login:
    """Log in as `openid` the way the mini-program does: wx.login, then our login endpoint."""

    async def _login(openid: str, **extra: Any) -> dict[str, Any]:
        code = await emulator.login_code(openid, **extra)
        response = await client.post("/v1/auth/wechat/login", json={"code": code})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    return _login


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


# A community on another street and district than the demo staff's (Tianhe, Shipai).
ELSEWHERE = "gz.yuexiu.beijing.fuqian"


StaffElsewhere = Callable[[], Awaitable[dict[str, str]]]


@pytest.fixture
def staff_elsewhere(client: httpx.AsyncClient, login: Login) -> StaffElsewhere:
    """Headers of community staff on a Yuexiu community, appointed by the demo city admin
    (needs the `demo` fixture): someone with real staff rights, but not here."""

    async def _appoint() -> dict[str, str]:
        city = bearer(await login("demo-city-admin"))
        granted = await client.post(
            "/v1/admin/role-grants",
            json={"openid": "demo-resident-3", "role": "community_staff", "region_code": ELSEWHERE},
            headers=city,
        )
        assert granted.status_code == 201, granted.text
        return bearer(await login("demo-resident-3"))

    return _appoint


@pytest.fixture
async def phone() -> AsyncIterator[httpx.AsyncClient]:
    """What wx.uploadFile talks to: the S3 server itself."""
    async with httpx.AsyncClient(timeout=30) as http:
        yield http


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status and stable code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert body["status"] == status
    assert body["detail"] and body["title"]
    return body
