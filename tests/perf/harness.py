"""What the benchmarks share: a scratch database, the real server in its own process, a
bare FastAPI + asyncpg ceiling beside it, and load generators that time each request.

Run from a benchmark script (`tests/perf/*.py` put the checkout on `sys.path` first).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from backend.embedded.postgres import EmbeddedPostgres
from backend.embedded.s3 import EmbeddedS3
from backend.wechat.emulator import EmulatorServer

ROOT = Path(__file__).resolve().parents[2]
APPID, SECRET = "wx-bench", "bench-secret"


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(20)


def start(
    command: list[str], *, env: dict[str, str], cwd: Path, log: Path
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command, env=env, cwd=cwd, stdout=log.open("w"), stderr=subprocess.STDOUT
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(240):
        if process.poll() is not None:
            raise SystemExit(f"server exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"server not ready:\n{log.read_text()[-3000:]}")


def pct(values: list[float], q: float) -> float:
    """The q-quantile of latencies in seconds, in milliseconds."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


Send = Callable[[httpx.AsyncClient, int], Awaitable[int]]


async def closed_loop(send: Send, base: str, concurrency: int, seconds: float) -> list[float]:
    """As fast as `concurrency` clients can go; returns latencies of successful requests."""
    latencies: list[float] = []
    failures = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as http:

        async def client(worker: int) -> None:
            nonlocal failures
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                status = await send(http, worker)
                if status in (200, 201):
                    latencies.append(time.perf_counter() - started)
                else:
                    failures += 1

        await asyncio.gather(*(client(w) for w in range(concurrency)))
    if failures:
        print(f"  {failures} requests failed")
    return latencies


async def open_loop(send: Send, base: str, rate: float, seconds: float) -> list[float]:
    """A fixed arrival rate, whatever the latency (so queueing shows in the figures)."""
    latencies: list[float] = []
    tasks: list[asyncio.Task[None]] = []
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as http:

        async def one(i: int) -> None:
            started = time.perf_counter()
            if await send(http, i) in (200, 201):
                latencies.append(time.perf_counter() - started)

        start = time.perf_counter()
        for i in range(int(rate * seconds)):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    return latencies


@dataclass
class Stack:
    """A scratch database on a PostgreSQL server, and the parts the app needs beside it."""

    work: Path
    url: str  # postgresql+asyncpg://... of the scratch database
    name: str
    dsn: str  # the same database for a bare asyncpg pool
    s3: EmbeddedS3
    emulator: EmulatorServer

    def app_env(self, port: int, **settings: str) -> dict[str, str]:
        """The environment of `shanzhi serve` on this stack (no SHANZHI_* of the caller's)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHANZHI_")}
        env.update(
            SHANZHI_ENV="test",
            SHANZHI_DATABASE_URL=self.url,
            SHANZHI_S3_ENDPOINT=self.s3.endpoint,
            SHANZHI_S3_ACCESS_KEY=self.s3.access_key,
            SHANZHI_S3_SECRET_KEY=self.s3.secret_key,
            SHANZHI_WECHAT_APPID=APPID,
            SHANZHI_WECHAT_SECRET=SECRET,
            SHANZHI_WECHAT_API_BASE=self.emulator.url,
            SHANZHI_PORT=str(port),
            SHANZHI_LOG_LEVEL="WARNING",
        )
        env.update({f"SHANZHI_{key.upper()}": value for key, value in settings.items()})
        return env

    def serve(self, stack: AsyncExitStack, env: dict[str, str]) -> str:
        """Start `shanzhi serve --no-demo` in its own process; its base URL once ready."""
        log = self.work / f"app-{env['SHANZHI_PORT']}.log"
        app = start(
            [sys.executable, "-c", "from backend.cli import main; main()", "serve", "--no-demo"],
            env=env,
            cwd=ROOT,
            log=log,
        )
        stack.callback(stop, app)
        base = f"http://127.0.0.1:{env['SHANZHI_PORT']}"
        wait_ready(f"{base}/readyz", app, log)
        return base

    def serve_bare(self, stack: AsyncExitStack, source: str, env: dict[str, str]) -> str:
        """Start a bare FastAPI app (the ceiling) from `source` under uvicorn."""
        (self.work / "bare_app.py").write_text(source)
        port = free_port()
        log = self.work / "bare.log"
        bare = start(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bare_app:app",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env={**os.environ, **env, "BENCH_DSN": self.dsn},
            cwd=self.work,
            log=log,
        )
        stack.callback(stop, bare)
        base = f"http://127.0.0.1:{port}"
        wait_ready(f"{base}/docs", bare, log)
        return base


async def open_stack(stack: AsyncExitStack, work: Path) -> Stack:
    """PostgreSQL (`SHANZHI_TEST_DATABASE_URL`'s server, else embedded) with a fresh
    database dropped at the end, the embedded S3 server and the WeChat emulator."""
    server_url = os.environ.get("SHANZHI_TEST_DATABASE_URL")
    if server_url:
        server_url = server_url.replace("postgresql://", "postgresql+asyncpg://", 1)
    else:
        postgres = EmbeddedPostgres(work)
        stack.callback(postgres.stop)
        server_url = postgres.start()
    name = f"shanzhi_bench_{uuid.uuid4().hex[:8]}"
    parsed = make_url(server_url)
    connect: dict[str, Any] = {
        "host": parsed.query.get("host") or parsed.host,
        "port": parsed.port,
        "user": parsed.username,
        "password": parsed.password,
    }
    admin = await asyncpg.connect(database="postgres", **connect)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()

    async def drop() -> None:
        conn = await asyncpg.connect(database="postgres", **connect)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()

    stack.push_async_callback(drop)
    url = parsed.set(database=name).render_as_string(hide_password=False)
    dsn = f"postgresql://{parsed.username}@/{name}?host={connect['host']}" + (
        f"&port={parsed.port}" if parsed.port else ""
    )
    s3 = EmbeddedS3(work)
    stack.callback(s3.stop)
    s3.start()
    emulator = EmulatorServer(APPID, SECRET)
    emulator.start()
    stack.callback(emulator.stop)
    return Stack(work=work, url=url, name=name, dsn=dsn, s3=s3, emulator=emulator)
