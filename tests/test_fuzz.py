"""The contract, fuzzed: schemathesis drives every operation of the committed spec against a
live server and checks for server errors and answers that break the spec.

The server runs in its own database (with the demo city) so that what the fuzzer writes
never meets the other tests.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    positive_data_acceptance,
)
from sqlalchemy.engine import make_url

from backend.app import create_app
from backend.core.config import Settings
from backend.core.database import create_engine, create_sessionmaker
from backend.core.migrate import upgrade
from backend.demo.loading import load_demo_data
from backend.embedded.processes import free_port
from backend.wechat.emulator import EmulatorServer
from tests.conftest import _asyncpg_kwargs

ROOT = Path(__file__).resolve().parent.parent
schema = schemathesis.openapi.from_path(ROOT / "openapi" / "openapi.json")


@dataclass
class LiveApi:
    url: str
    headers: dict[str, str]


async def _fresh_database(server_url: str) -> str:
    name = f"shanzhi_fuzz_{secrets.token_hex(4)}"
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


async def _drop_database(server_url: str, url: str) -> None:
    admin = await asyncpg.connect(**_asyncpg_kwargs(server_url, "postgres"))
    try:
        name = make_url(url).database
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def _run_in_thread(coroutine: Any) -> Any:
    """Run a coroutine to completion on a loop of its own (the test loop is not running)."""
    result: dict[str, Any] = {}

    def target() -> None:
        result["value"] = asyncio.run(coroutine)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    return result.get("value")


@pytest.fixture(scope="module")
def live_api(server_url: str, settings: Settings, emulator: EmulatorServer) -> Iterator[LiveApi]:
    url = _run_in_thread(_fresh_database(server_url))
    port = free_port()
    app = create_app(
        settings.model_copy(
            update={"database_url": url, "rate_limits": {"case_submit": "100000/minute"}}
        )
    )
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    # An authenticated resident, so the fuzzer reaches past the login wall.
    code = _run_in_thread(emulator.login_code("demo-resident"))
    token = httpx.post(f"{base}/v1/auth/wechat/login", json={"code": code}).json()
    try:
        yield LiveApi(base, {"Authorization": f"Bearer {token['access_token']}"})
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        _run_in_thread(_drop_database(server_url, url))


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_no_server_errors_and_no_answers_outside_the_contract(
    case: schemathesis.Case, live_api: LiveApi
) -> None:
    # Domain rules rightly refuse some schema-valid input (an unknown login code, a point
    # outside every grid), and unknown query parameters are ignored on purpose (clients add
    # cache-busters), so the two "acceptance/rejection" heuristics are left out; every
    # answer must still be documented, well-formed and free of server errors.
    case.call_and_validate(
        base_url=live_api.url,
        headers=live_api.headers,
        excluded_checks=[positive_data_acceptance, negative_data_rejection],
    )
