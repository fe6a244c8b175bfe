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

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    positive_data_acceptance,
)

from backend.auth.models import Role
from backend.core.config import Settings
from backend.demo import DEMO_ACCOUNTS
from backend.wechat.emulator import EmulatorServer
from tests.live import drop_database, fresh_database, login, run_in_thread
from tests.live import live_api as live_api_at

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


@pytest.fixture(scope="module")
def live_api(server_url: str, settings: Settings, emulator: EmulatorServer) -> Iterator[LiveApi]:
    url = run_in_thread(fresh_database(server_url, "shanzhi_fuzz"))
    mine = settings.model_copy(
        update={
            "database_url": url,
            "rate_limits": {**settings.rate_limits, "case_submit": "100000/minute"},
            # The module runs for minutes; no token may expire halfway.
            "access_token_minutes": 120,
        }
    )
    try:
        with live_api_at(mine) as base:
            yield LiveApi(base, emulator)
    finally:
        run_in_thread(drop_database(server_url, url))


def _login(live_api: LiveApi, role: Role | None) -> dict[str, str]:
    """The bearer token of the demo account holding `role`, logged in as the phone does."""
    return login(live_api.url, run_in_thread(live_api.emulator.login_code(demo_openid(role))))


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
