"""The contract, fuzzed: schemathesis drives every operation of the committed spec against a
live server and checks for server errors and answers that break the spec.

Each operation is fuzzed once per role, with the token of a demo account holding it (a
resident, a grid worker, community staff, the city admin), so the fuzzer reaches past the
login wall and past each role check into the services behind it. Malformed requests (the
negative cases of schemathesis' coverage phase: wrong types, missing fields, broken
patterns, unexpected methods) are refused by validation before any role is looked at, so
they are sent once, as a resident.

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
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    positive_data_acceptance,
)
from sqlalchemy.engine import make_url

from backend.app import create_app
from backend.auth.models import Role
from backend.core.config import Settings
from backend.core.database import create_engine, create_sessionmaker
from backend.core.migrate import upgrade
from backend.demo import DEMO_ACCOUNTS, load_demo_data
from backend.embedded.processes import free_port
from backend.wechat.emulator import EmulatorServer
from tests.conftest import _asyncpg_kwargs

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "openapi" / "openapi.json"

# For every role: the spec's examples, random requests (valid and not), and the valid edge
# cases of the coverage phase (lengths, bounds, enum values, optional fields left out).
schema = schemathesis.openapi.from_path(
    SPEC,
    config=SchemathesisConfig.from_dict(
        {"phases": {"coverage": {"generation": {"mode": "positive"}, "unexpected-methods": []}}}
    ),
)
# Malformed requests, once: only the coverage phase's negative cases.
malformed = schemathesis.openapi.from_path(
    SPEC,
    config=SchemathesisConfig.from_dict(
        {
            "phases": {
                "examples": {"enabled": False},
                "fuzzing": {"enabled": False},
                "coverage": {"generation": {"mode": "negative"}},
            }
        }
    ),
)

# Random examples per operation and role (12 per operation in all), on top of the coverage
# phase's own cases. On 2 cores the module takes 3.5 to 4 minutes: ~40 s per role (~4 s of
# it per random example), ~60 s for the malformed requests. The suite must stay under 10.
MAX_EXAMPLES = 3


# The roles the fuzzer acts as, each a separate test id.
ROLES: dict[str, Role | None] = {
    "resident": None,
    "grid_worker": Role.grid_worker,
    "community_staff": Role.community_staff,
    "admin": Role.admin,
}


def demo_openid(role: Role | None) -> str:
    """The demo account holding `role` on the widest region (the city admin, not a district's)."""
    holders = [account for account in DEMO_ACCOUNTS if account.role == role]
    return min(holders, key=lambda account: (account.region or "").count(".")).openid


@dataclass
class LiveApi:
    url: str
    emulator: EmulatorServer


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
            update={
                "database_url": url,
                "rate_limits": {"case_submit": "100000/minute"},
                # The module runs for minutes; no token may expire halfway.
                "access_token_minutes": 120,
            }
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
    try:
        yield LiveApi(base, emulator)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        _run_in_thread(_drop_database(server_url, url))


def _login(live_api: LiveApi, role: Role | None) -> dict[str, str]:
    """The bearer token of the demo account holding `role`, logged in as the phone does."""
    code = _run_in_thread(live_api.emulator.login_code(demo_openid(role)))
    login = httpx.post(f"{live_api.url}/v1/auth/wechat/login", json={"code": code})
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


@pytest.fixture(scope="module", params=list(ROLES))
def headers(request: pytest.FixtureRequest, live_api: LiveApi) -> dict[str, str]:
    return _login(live_api, ROLES[request.param])


@pytest.fixture(scope="module")
def resident_headers(live_api: LiveApi) -> dict[str, str]:
    return _login(live_api, ROLES["resident"])


def _call_and_validate(case: schemathesis.Case, url: str, headers: dict[str, str]) -> None:
    # Domain rules rightly refuse some schema-valid input (an unknown login code, a point
    # outside every grid), and unknown query parameters are ignored on purpose (clients add
    # cache-busters), so the two "acceptance/rejection" heuristics are left out; every
    # answer must still be documented, well-formed and free of server errors.
    case.call_and_validate(
        base_url=url,
        headers=headers,
        excluded_checks=[positive_data_acceptance, negative_data_rejection],
    )


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_no_server_errors_and_no_answers_outside_the_contract(
    case: schemathesis.Case, live_api: LiveApi, headers: dict[str, str]
) -> None:
    _call_and_validate(case, live_api.url, headers)


@malformed.parametrize()
@settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_malformed_requests_are_refused_as_documented(
    case: schemathesis.Case, live_api: LiveApi, resident_headers: dict[str, str]
) -> None:
    _call_and_validate(case, live_api.url, resident_headers)
