"""Liveness, readiness, request ids, metrics and the problem shape of framework errors."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from backend.core.i18n import negotiate


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok", "checks": {}}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "storage": "ok"}


async def test_readiness_fails_clearly_when_storage_is_gone(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    store = app.state.object_store
    original = store.bucket
    store.bucket = "no-such-bucket-here"
    try:
        response = await client.get("/readyz", headers={"Accept-Language": "en"})
    finally:
        store.bucket = original
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "service.not_ready"
    assert body["detail"] == "The service is not ready: storage"


async def test_every_response_carries_a_request_id(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert len(response.headers["x-request-id"]) == 32
    echoed = await client.get("/healthz", headers={"X-Request-ID": "a" * 32})
    assert echoed.headers["x-request-id"] == "a" * 32
    problem = (await client.get("/v1/me")).json()
    assert problem["request_id"]


async def test_unknown_routes_and_methods_are_problems(client: httpx.AsyncClient) -> None:
    missing = await client.get("/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert missing.json()["code"] == "request.not_found"
    wrong = await client.delete("/healthz")
    assert wrong.status_code == 405
    assert wrong.json()["code"] == "request.method_not_allowed"
    assert wrong.headers["allow"] == "GET, HEAD"


async def test_metrics_count_requests_by_route(client: httpx.AsyncClient) -> None:
    await client.get("/healthz")
    text = (await client.get("/metrics")).text
    assert 'shanzhi_http_requests_total{method="GET",route="/healthz",status="200"}' in text


def test_language_negotiation() -> None:
    assert negotiate(None) == "zh-CN"
    assert negotiate("en") == "en"
    assert negotiate("en-US,en;q=0.9,zh-CN;q=0.8") == "en"
    assert negotiate("zh-CN,zh;q=0.9,en;q=0.8") == "zh-CN"
    assert negotiate("fr-FR, en;q=0.5") == "en"
    assert negotiate("en;q=0, zh;q=0.1") == "zh-CN"
    assert negotiate("de") == "zh-CN"
