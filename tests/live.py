"""A live API for the tests that need one over real sockets (the fuzzer, the fault tests):
a database of its own with the demo city, and uvicorn in a thread."""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import asyncpg
import httpx
import uvicorn
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from backend.app import create_app
from backend.core.config import Settings
from backend.core.database import create_engine, create_sessionmaker
from backend.core.migrate import upgrade
from backend.demo.loading import load_demo_data
from backend.embedded.processes import free_port
from tests.conftest import _asyncpg_kwargs

T = TypeVar("T")


def run_in_thread(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a loop of its own (for sync fixtures)."""
    result: dict[str, T] = {}

    def target() -> None:
        result["value"] = asyncio.run(coroutine)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    return result["value"]


async def fresh_database(server_url: str, prefix: str) -> str:
    """A new database on `server_url` at the head migration, with the demo city."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(**_asyncpg_kwargs(server_url, "postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url, pool_size=1)
    await upgrade(engine)
    async with create_sessionmaker(engine)() as session:
        await load_demo_data(session)
        await session.commit()
    await engine.dispose()
    return url


async def drop_database(server_url: str, url: str) -> None:
    admin = await asyncpg.connect(**_asyncpg_kwargs(server_url, "postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
    finally:
        await admin.close()


@contextmanager
def live_api(app: FastAPI | Settings) -> Iterator[str]:
    """The API (or an app made from these settings) on a free loopback port, in a thread,
    until the block ends; its base URL."""
    port = free_port()
    application = create_app(app) if isinstance(app, Settings) else app
    server = uvicorn.Server(
        uvicorn.Config(application, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(400):
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    else:
        raise RuntimeError("the live API did not become ready")
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def login(base: str, code: str) -> dict[str, str]:
    """Bearer headers for a WeChat login code."""
    tokens = httpx.post(f"{base}/v1/auth/wechat/login", json={"code": code})
    assert tokens.status_code == 200, tokens.text
    return {"Authorization": f"Bearer {tokens.json()['access_token']}"}
