"""The calls made without a token are limited per client address (and a login per code),
before any work: a refused login never reaches WeChat.

The suite lifts the per-address limits (tests/conftest.py); each test here puts one back and
calls from addresses no other test uses, so counts from elsewhere never meet it.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from backend.wechat.emulator import EmulatorServer
from tests.conftest import FromAddress, assert_problem

LOGIN = "/v1/auth/wechat/login"


async def upstream_logins(emulator: EmulatorServer) -> int:
    """How many code2Session calls WeChat has answered so far."""
    return (await emulator.stats())["jscode2session"]


def assert_rate_limited(response: httpx.Response) -> int:
    body = assert_problem(response, 429, "request.rate_limited")
    seconds = int(response.headers["Retry-After"])
    assert 1 <= seconds <= 60 and body["retry_after"] == seconds
    return seconds


async def test_logins_from_one_address_stop_at_the_limit_before_wechat_is_asked(
    app: FastAPI,
    from_address: FromAddress,
    emulator: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The built-in rule: 30 a minute per address.
    monkeypatch.delitem(app.state.settings.rate_limits, "login_address")
    attacker = from_address("198.51.100.10")
    before = await upstream_logins(emulator)
    for n in range(30):
        junk = await attacker.post(LOGIN, json={"code": f"junk-code-{n}"})
        assert_problem(junk, 400, "wechat.code_invalid")
    assert await upstream_logins(emulator) == before + 30

    assert_rate_limited(await attacker.post(LOGIN, json={"code": "junk-code-30"}))
    # Even a good code is refused from there, and WeChat never hears of it.
    code = await emulator.login_code("resident-behind-the-attacker")
    assert_rate_limited(await attacker.post(LOGIN, json={"code": code}))
    assert await upstream_logins(emulator) == before + 30

    # Another address is not held up, and the refused code was not spent.
    neighbour = await from_address("198.51.100.11").post(LOGIN, json={"code": code})
    assert neighbour.status_code == 200, neighbour.text


async def test_a_phone_retrying_a_few_times_is_never_held_up(
    app: FastAPI,
    from_address: FromAddress,
    emulator: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(app.state.settings.rate_limits, "login_address")
    phone = from_address("198.51.100.20")
    code = await emulator.login_code("resident-on-a-flaky-network")
    assert (await phone.post(LOGIN, json={"code": code})).status_code == 200
    # The answer was lost; the retry with the same code is WeChat's to refuse, not ours.
    for _ in range(2):
        assert_problem(await phone.post(LOGIN, json={"code": code}), 400, "wechat.code_invalid")
    for _ in range(3):
        fresh = await emulator.login_code("resident-on-a-flaky-network")
        assert (await phone.post(LOGIN, json={"code": fresh})).status_code == 200


async def test_one_code_is_tried_at_most_five_times_from_any_address(
    from_address: FromAddress, emulator: EmulatorServer
) -> None:
    before = await upstream_logins(emulator)
    for n in range(5):
        tried = await from_address(f"198.51.100.{30 + n}").post(LOGIN, json={"code": "replayed"})
        assert_problem(tried, 400, "wechat.code_invalid")
    sixth = await from_address("198.51.100.35").post(LOGIN, json={"code": "replayed"})
    assert_problem(sixth, 429, "request.rate_limited")
    assert int(sixth.headers["Retry-After"]) >= 1
    assert await upstream_logins(emulator) == before + 5
    # Other codes from the same address go through.
    code = await emulator.login_code("resident-next-in-line")
    fine = await from_address("198.51.100.35").post(LOGIN, json={"code": code})
    assert fine.status_code == 200, fine.text


async def test_ipv6_clients_are_counted_by_their_64(
    app: FastAPI, from_address: FromAddress, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One device may use any address of its /64: they share one budget.
    monkeypatch.setitem(app.state.settings.rate_limits, "categories_address", "2/minute")
    for host in ("2001:db8:5:7::1", "2001:db8:5:7::2"):
        assert (await from_address(host).get("/v1/categories")).status_code == 200
    assert_rate_limited(await from_address("2001:db8:5:7:ffff::3").get("/v1/categories"))
    assert (await from_address("2001:db8:5:8::1").get("/v1/categories")).status_code == 200


PUBLIC_CALLS: list[tuple[str, str, str, dict[str, Any] | None, int]] = [
    # (limit, method, path, body, status before the limit)
    ("refresh_address", "POST", "/v1/auth/refresh", {"refresh_token": "x" * 43}, 401),
    ("logout_address", "POST", "/v1/auth/logout", {"refresh_token": "x" * 43}, 204),
    ("categories_address", "GET", "/v1/categories", None, 200),
    ("region_address", "GET", "/v1/regions/gz", None, 404),
    ("locate_address", "GET", "/v1/regions/locate?lat=23.13&lng=113.33&coord=wgs84", None, 404),
]


@pytest.mark.parametrize(
    ("limit", "method", "path", "body", "status"),
    PUBLIC_CALLS,
    ids=[call[0] for call in PUBLIC_CALLS],
)
async def test_every_call_without_a_token_is_limited_per_address(
    app: FastAPI,
    from_address: FromAddress,
    monkeypatch: pytest.MonkeyPatch,
    limit: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    status: int,
) -> None:
    monkeypatch.setitem(app.state.settings.rate_limits, limit, "2/minute")
    index = [call[0] for call in PUBLIC_CALLS].index(limit)
    caller = from_address(f"198.51.100.{100 + index}")
    for _ in range(2):
        assert (await caller.request(method, path, json=body)).status_code == status
    assert_rate_limited(await caller.request(method, path, json=body))
    other = from_address(f"198.51.100.{110 + index}")
    assert (await other.request(method, path, json=body)).status_code == status


def test_the_spec_documents_the_429_of_every_call_without_a_token(app: FastAPI) -> None:
    unguarded = []
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            if operation.get("security") or "ops" in operation.get("tags", []):
                continue
            limited = operation["responses"].get("429", {})
            if "Retry-After" not in limited.get("headers", {}):
                unguarded.append(f"{method.upper()} {path}")
    assert not unguarded
