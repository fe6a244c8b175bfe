"""Parts taken down under load, as an operator would: real parts, no mocks.

The API runs in uvicorn on its own embedded PostgreSQL and embedded S3, which the tests
stop, start and kill while clients keep calling it over keep-alive connections. What must
hold: a part down answers 503 with Retry-After within 2 s, never a 500 and never a dropped
connection; the API recovers by itself when the part returns; nothing acknowledged is lost;
a dead S3 does not slow down what does not need it. Each test prints what it measured.
"""

from __future__ import annotations

import asyncio
import http.client
import statistics
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy.engine import make_url
from sqlalchemy.exc import TimeoutError as SATimeoutError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from backend.app import create_app
from backend.core.clock import now
from backend.core.config import Settings
from backend.core.errors import PROBLEM_JSON
from backend.core.security import issue_access_token
from backend.embedded import EmbeddedPostgres, EmbeddedS3
from backend.embedded.processes import free_port
from backend.wechat.emulator import EmulatorServer
from tests.conftest import _asyncpg_kwargs
from tests.factories.storage import JPEG
from tests.live import fresh_database, live_api, login, run_in_thread

# The middle of grid g05 of the demo city.
G05 = (23.1300 + 1.5 * 0.0027, 113.3250 + 1.5 * 0.0029)
DEADLINE_SECONDS = 2.0  # the longest a refusal may take while a part is down


@dataclass
class Stack:
    api: str
    postgres: EmbeddedPostgres
    s3: EmbeddedS3
    database_url: str
    resident: dict[str, str]


@pytest.fixture(scope="module")
def stack(workdir: Path, settings: Settings, emulator: EmulatorServer) -> Iterator[Stack]:
    root = workdir / "faults"
    postgres = EmbeddedPostgres(root)
    s3 = EmbeddedS3(root)
    try:
        url = run_in_thread(fresh_database(postgres.start(), "shanzhi_faults"))
        s3.start()
        mine = settings.model_copy(
            update={
                "database_url": url,
                "database_pool_size": 4,
                "s3_endpoint": s3.endpoint,
                "s3_access_key": s3.access_key,
                "s3_secret_key": SecretStr(s3.secret_key),
                "s3_bucket": "shanzhi-faults",
                "rate_limits": {
                    **settings.rate_limits,
                    "case_submit": "100000/minute",
                    "upload_create": "100000/minute",
                },
            }
        )
        with live_api(mine) as api:
            resident = login(api, run_in_thread(emulator.login_code("demo-resident")))
            yield Stack(api, postgres, s3, url, resident)
    finally:
        s3.stop(timeout=0.1)
        postgres.stop()


@dataclass
class Tally:
    """What clients saw: every answer's status, code and time, and requests left unanswered."""

    answers: list[tuple[float, int, str, float]] = field(default_factory=list)  # at, status,..
    dropped: list[str] = field(default_factory=list)

    def count(self, status: int) -> int:
        return sum(1 for _, s, _, _ in self.answers if s == status)

    def slowest(self, status: int) -> float:
        return max((took for _, s, _, took in self.answers if s == status), default=0.0)


async def _call(
    tally: Tally, http: httpx.AsyncClient, method: str, path: str, **kwargs: Any
) -> httpx.Response | None:
    started = time.perf_counter()
    try:
        response = await http.request(method, path, **kwargs)
    except httpx.TransportError as error:
        tally.dropped.append(f"{method} {path}: {type(error).__name__}")
        return None
    took = time.perf_counter() - started
    code = ""
    if response.status_code >= 400:
        problem = response.headers.get("content-type", "").startswith(PROBLEM_JSON)
        code = response.json().get("code", "") if problem else "(not problem+json)"
        if response.status_code == 503:
            assert int(response.headers["Retry-After"]) >= 1
    tally.answers.append((time.monotonic(), response.status_code, code, took))
    return response


def _report(**extra: Any) -> dict[str, Any]:
    return {
        "category": "road_facilities",
        "description": "井盖破损，行人容易踩空",
        "location": {"lat": G05[0], "lng": G05[1], "coord": "wgs84"},
        **extra,
    }


def _two_requests_on_one_connection(
    api: str, headers: dict[str, str], path: str = "/v1/me/cases"
) -> list[tuple[int, str]]:
    """Two GETs over one keep-alive connection; fails if the server closed it in between."""
    parts = urlsplit(api)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5)
    answers: list[tuple[int, str]] = []
    try:
        for _ in range(2):
            connection.request("GET", path, headers=headers)
            socket = connection.sock
            response = connection.getresponse()
            response.read()
            assert response.getheader("Connection", "").lower() != "close"
            assert connection.sock is socket is not None, "the server closed the connection"
            answers.append((response.status, response.getheader("Retry-After") or ""))
    finally:
        connection.close()
    return answers


async def _cases_with_key(database_url: str, keys: list[str]) -> dict[str, int]:
    connection = await asyncpg.connect(
        **_asyncpg_kwargs(database_url, make_url(database_url).database or "")
    )
    try:
        rows = await connection.fetch(
            "SELECT idempotency_key, count(*) AS n FROM case_file "
            "WHERE idempotency_key = ANY($1::text[]) GROUP BY idempotency_key",
            keys,
        )
    finally:
        await connection.close()
    return {row["idempotency_key"]: row["n"] for row in rows}


async def test_the_database_restarting_under_load(stack: Stack) -> None:
    tally = Tally()
    written: dict[str, int] = {}  # idempotency key -> the status its first try got
    stop = asyncio.Event()
    headers = stack.resident

    async def reader(http: httpx.AsyncClient) -> None:
        while not stop.is_set():
            await _call(tally, http, "GET", "/v1/me/cases", headers=headers)
            await asyncio.sleep(0.01)

    async def writer(http: httpx.AsyncClient) -> None:
        while not stop.is_set():
            key = uuid.uuid4().hex
            response = await _call(
                tally,
                http,
                "POST",
                "/v1/reports",
                json=_report(),
                headers={**headers, "Idempotency-Key": key},
            )
            written[key] = response.status_code if response is not None else 0
            await asyncio.sleep(0.02)

    limits = httpx.Limits(max_connections=1)  # each client reuses its one connection
    clients = [httpx.AsyncClient(base_url=stack.api, limits=limits, timeout=10) for _ in range(4)]
    loops = [asyncio.create_task(reader(c)) for c in clients[:3]]
    loops.append(asyncio.create_task(writer(clients[3])))
    try:
        await asyncio.sleep(1)
        await asyncio.to_thread(stack.postgres.stop)
        await asyncio.sleep(0.5)
        while_down = await asyncio.to_thread(_two_requests_on_one_connection, stack.api, headers)
        await asyncio.sleep(2)
        await asyncio.to_thread(stack.postgres.start)
        back_at = time.monotonic()
        recovered_at: float | None = None
        while time.monotonic() - back_at < 15:
            await asyncio.sleep(0.05)
            recovered_at = next(
                (at for at, status, _, _ in tally.answers if at > back_at and status == 200),
                None,
            )
            if recovered_at is not None:
                break
        await asyncio.sleep(0.5)
    finally:
        stop.set()
        await asyncio.gather(*loops)
        for client in clients:
            await client.aclose()

    recovery = (recovered_at - back_at) if recovered_at is not None else float("inf")
    unavailable = [code for _, status, code, _ in tally.answers if status == 503]
    print(
        f"\ndatabase restart: {len(tally.answers)} answers, 500s {tally.count(500)}, "
        f"no answer {len(tally.dropped)}, 503s {len(unavailable)} "
        f"(slowest {tally.slowest(503):.3f} s), recovery {recovery:.2f} s after start"
    )
    assert tally.dropped == []
    assert tally.count(500) == 0
    assert unavailable and set(unavailable) == {"service.database_unavailable"}
    assert {status for _, status, _, _ in tally.answers} <= {200, 201, 503}
    assert tally.slowest(503) <= DEADLINE_SECONDS
    assert [status for status, _ in while_down] == [503, 503]
    assert all(retry_after.isdigit() for _, retry_after in while_down)
    assert recovery < 5

    # Nothing acknowledged is lost, and a refused write, tried again with its key, is
    # applied exactly once.
    async with httpx.AsyncClient(base_url=stack.api, timeout=10) as http:
        for key, status in written.items():
            if status != 201:
                again = await http.post(
                    "/v1/reports", json=_report(), headers={**headers, "Idempotency-Key": key}
                )
                assert again.status_code in (200, 201), again.text
    stored = await _cases_with_key(stack.database_url, list(written))
    assert stored == dict.fromkeys(written, 1)


async def _posted_photo(http: httpx.AsyncClient, headers: dict[str, str]) -> str:
    ticket = await http.post(
        "/v1/uploads",
        json={"purpose": "case_photo", "content_type": "image/jpeg", "size": len(JPEG)},
        headers=headers,
    )
    assert ticket.status_code == 201, ticket.text
    form = ticket.json()
    posted = await http.post(
        form["url"], data=form["fields"], files={"file": ("x.jpg", JPEG, "image/jpeg")}
    )
    assert posted.status_code == 204, posted.text
    upload_id: str = form["id"]
    return upload_id


def _p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98]


def _p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[94]


async def test_s3_killed_under_load(stack: Stack) -> None:
    headers = stack.resident
    async with httpx.AsyncClient(base_url=stack.api, timeout=30) as http:
        photos = [await _posted_photo(http, headers) for _ in range(110)]

        async def traffic(seconds: float, tally: Tally) -> list[float]:
            """Residents submitting reports with a photo each (two every 0.1 s) while
            another keeps reading their cases; the reads' times."""
            stop = time.monotonic() + seconds
            reads: list[float] = []

            async def reader() -> None:
                while time.monotonic() < stop:
                    started = time.perf_counter()
                    response = await http.get("/v1/me/cases", headers=headers)
                    reads.append(time.perf_counter() - started)
                    assert response.status_code == 200

            async def submitter() -> None:
                while time.monotonic() < stop and photos:
                    await _call(
                        tally,
                        http,
                        "POST",
                        "/v1/reports",
                        json=_report(upload_ids=[photos.pop()]),
                        headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
                    )
                    await asyncio.sleep(0.1)

            await asyncio.gather(reader(), submitter(), submitter())
            return reads

        normal_tally = Tally()
        normal = await traffic(2.5, normal_tally)
        assert normal_tally.count(201) == len(normal_tally.answers) > 0
        before = len((await http.get("/v1/me/cases", headers=headers)).json()["items"])

        await asyncio.to_thread(stack.s3.stop, 0.05)  # SIGKILL after 50 ms
        tally = Tally()
        during = await traffic(2.5, tally)
        pending = photos.pop() if photos else None
        if pending is not None:
            status = await _call(tally, http, "GET", f"/v1/uploads/{pending}", headers=headers)
            assert status is not None and status.status_code == 503
        after = len((await http.get("/v1/me/cases", headers=headers)).json()["items"])

    codes = {code for _, _, code, _ in tally.answers}
    slowest = max(took for _, _, _, took in tally.answers)
    print(
        f"\nS3 killed: {len(tally.answers)} uploads answered, 500s {tally.count(500)}, "
        f"no answer {len(tally.dropped)}, slowest {slowest:.3f} s; reads p99 "
        f"{_p99(normal) * 1000:.1f} ms with S3 up, {_p99(during) * 1000:.1f} ms with it down "
        f"({_p99(during) / _p99(normal):.2f}x); p95 {_p95(normal) * 1000:.1f} ms and "
        f"{_p95(during) * 1000:.1f} ms ({len(normal)} and {len(during)} reads)"
    )
    assert tally.dropped == [] and tally.count(500) == 0
    assert tally.count(503) == len(tally.answers) and codes == {"upload.storage_unavailable"}
    assert slowest <= DEADLINE_SECONDS
    # Reads are not slowed by uploads failing on S3. Asserted on p95 (with a few ms of
    # slack): on a two-core machine one stall of the whole process is the p99 of a run.
    assert _p95(during) <= 2 * _p95(normal) + 0.010
    # Nothing half written: no case came of a refused submission.
    assert after == before


def test_a_bug_answers_500_problem_json_and_keeps_the_connection(settings: Settings) -> None:
    app = create_app(settings)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    with live_api(app) as api:
        answers = _two_requests_on_one_connection(api, {"Accept-Language": "en"}, "/boom")
        body = httpx.get(f"{api}/boom").json()
    assert [status for status, _ in answers] == [500, 500]
    assert body["code"] == "internal" and body["request_id"]


async def test_no_free_connection_answers_503_within_the_pool_timeout(settings: Settings) -> None:
    app = create_app(
        settings.model_copy(update={"database_pool_size": 1, "database_pool_timeout_seconds": 0.5})
    )
    token, _ = issue_access_token(uuid.uuid4(), settings, now())
    async with app.router.lifespan_context(app):
        engine: AsyncEngine = app.state.engine
        held: list[AsyncConnection] = []
        try:
            while True:  # every pooled connection taken, as by requests stuck elsewhere
                try:
                    held.append(await engine.connect())
                except SATimeoutError:
                    break
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
                started = time.perf_counter()
                response = await http.get(
                    "/v1/me/cases",
                    headers={"Authorization": f"Bearer {token}", "Accept-Language": "en"},
                )
                took = time.perf_counter() - started
        finally:
            for connection in held:
                await connection.close()
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "service.database_unavailable"
    assert response.headers["Retry-After"] == "2"
    assert response.json()["detail"].startswith("The service is busy")
    assert took < DEADLINE_SECONDS


async def test_rate_limits_with_their_redis_down_let_calls_through(
    settings: Settings, emulator: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(
        settings.model_copy(
            update={"redis_url": f"redis://127.0.0.1:{free_port()}/0", "rate_limits": {}}
        )
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            started = time.perf_counter()
            code = await emulator.login_code("demo-resident")
            response = await http.post("/v1/auth/wechat/login", json={"code": code})
            took = time.perf_counter() - started
    assert response.status_code == 200, response.text
    assert took < DEADLINE_SECONDS
    assert "rate-limit store unreachable" in caplog.text
