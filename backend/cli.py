"""The `shanzhi` command: serve, migrate, worker, demo-data, openapi."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
import uvicorn
from pydantic import SecretStr

from backend.core.config import Environment, Settings, get_settings
from backend.core.logging import configure_logging

log = logging.getLogger("shanzhi.cli")

cli = typer.Typer(
    help="Shanzhi (善治): the community-governance backend.",
    no_args_is_help=True,
    add_completion=False,
)

DEFAULT_SPEC = Path("openapi/openapi.json")
DEFAULT_CONTRACT = Path("miniapp-contract/api.ts")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM becomes the same orderly shutdown as Ctrl-C: every `finally` below runs.
    raise KeyboardInterrupt


@contextmanager
def _embedded_database(settings: Settings, stack: ExitStack) -> Iterator[Settings]:
    """Settings with a database: the configured one, or an embedded PostgreSQL."""
    if settings.database_url:
        yield settings
        return
    from backend.embedded import EmbeddedPostgres

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    postgres = EmbeddedPostgres(settings.data_dir)
    stack.callback(postgres.stop)
    postgres.start()
    url = postgres.ensure_database("shanzhi")
    yield settings.model_copy(update={"database_url": url})


def _embedded_storage(settings: Settings, stack: ExitStack) -> Settings:
    if settings.s3_endpoint:
        return settings
    from backend.embedded import EmbeddedS3

    s3 = EmbeddedS3(settings.data_dir)
    stack.callback(s3.stop)
    s3.start()
    return settings.model_copy(
        update={
            "s3_endpoint": s3.endpoint,
            "s3_access_key": s3.access_key,
            "s3_secret_key": SecretStr(s3.secret_key),
            "s3_secure": False,
        }
    )


def _emulated_wechat(settings: Settings, stack: ExitStack) -> Settings:
    if not settings.emulated_wechat:
        return settings
    from backend.wechat.emulator import EmulatorServer

    emulator = EmulatorServer(
        appid=settings.wechat_appid,
        secret=settings.wechat_secret.get_secret_value(),
        port=settings.emulator_port,
    )
    stack.callback(emulator.stop)
    emulator.start()
    return settings.model_copy(update={"wechat_api_base": emulator.url})


async def _migrate(settings: Settings, *, demo: bool) -> bool:
    """Bring the schema to head; load the demo city when asked. True if demo data was added."""
    from backend.core.database import create_engine, create_sessionmaker
    from backend.core.migrate import upgrade
    from backend.demo import load_demo_data

    assert settings.database_url
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        await upgrade(engine)
        if not demo:
            return False
        async with create_sessionmaker(engine)() as session:
            added = await load_demo_data(session)
            await session.commit()
            return bool(added)
    finally:
        await engine.dispose()


def _banner(settings: Settings) -> str:
    from backend.demo import DEMO_ACCOUNTS

    base = f"http://{settings.host}:{settings.port}"
    lines = [
        "",
        f"  Shanzhi API      {base}",
        f"  API docs         {base}/docs",
        f"  readiness        {base}/readyz",
        f"  data directory   {settings.data_dir}",
    ]
    if settings.wechat_api_base and settings.env is not Environment.production:
        emulator = settings.wechat_api_base
        lines += [
            f"  WeChat emulator  {emulator}",
            "",
            "  Log in as the demo resident:",
            f"    CODE=$(curl -s -X POST {emulator}/emulator/login-code "
            "-H 'Content-Type: application/json' -d '{\"openid\": \"demo-resident\"}' "
            "| python3 -c 'import json,sys; print(json.load(sys.stdin)[\"code\"])')",
            f"    curl -s -X POST {base}/v1/auth/wechat/login "
            '-H \'Content-Type: application/json\' -d "{\\"code\\": \\"$CODE\\"}"',
            "  Demo staff log in the same way with these openids:",
        ]
        lines += [f"    {a.openid:<22} {a.description}" for a in DEMO_ACCOUNTS]
    lines.append("")
    return "\n".join(lines)


@cli.command()
def serve(
    demo: Annotated[bool, typer.Option(help="Load the demo city on first start.")] = True,
) -> None:
    """Run the API. With no database or S3 configured, starts embedded ones (and the WeChat
    emulator in development), migrates, loads demo data, and serves on 127.0.0.1:8000."""
    settings = get_settings()
    configure_logging(settings.log_level, json=settings.json_logs)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    started = time.perf_counter()
    with ExitStack() as stack:
        try:
            with _embedded_database(settings, stack) as settings:
                settings = _embedded_storage(settings, stack)
                if settings.env is not Environment.production:
                    settings = _emulated_wechat(settings, stack)
                load_demo = demo and settings.env is Environment.development
                if asyncio.run(_migrate(settings, demo=load_demo)):
                    log.info("demo data loaded")
                from backend.app import create_app

                app = create_app(settings)
                server = uvicorn.Server(
                    uvicorn.Config(
                        app,
                        host=settings.host,
                        port=settings.port,
                        log_config=None,
                        proxy_headers=True,
                        # Longer than the idle timeout of clients and proxies (httpx and
                        # many others drop idle connections after 5 s, uvicorn's default):
                        # the server closing at the same moment a client reuses the
                        # connection loses that request.
                        timeout_keep_alive=75,
                    )
                )
                log.info("started dependencies in %.1f s", time.perf_counter() - started)
                print(_banner(settings), file=sys.stderr, flush=True)
                server.run()
        except KeyboardInterrupt:
            log.info("stopping")
    log.info("stopped")


@cli.command()
def migrate() -> None:
    """Bring the database schema up to date (embedded PostgreSQL when none is configured)."""
    settings = get_settings()
    configure_logging(settings.log_level, json=settings.json_logs)
    with ExitStack() as stack, _embedded_database(settings, stack) as settings:
        asyncio.run(_migrate(settings, demo=False))


@cli.command()
def worker(
    once: Annotated[bool, typer.Option("--once", help="Run the jobs once, then exit.")] = False,
    interval: Annotated[
        float | None,
        typer.Option(
            min=0.1, help="Seconds between runs (default: SHANZHI_WORKER_INTERVAL_SECONDS)."
        ),
    ] = None,
) -> None:
    """Run the periodic jobs: escalate overdue cases, close unrated ones, purge stale uploads.

    Any number of workers may run at once. SIGINT or SIGTERM stops it cleanly; with
    `--once` the exit code is 1 if a job failed.
    """
    settings = get_settings()
    configure_logging(settings.log_level, json=settings.json_logs)
    from backend.worker import run_worker

    with ExitStack() as stack, _embedded_database(settings, stack) as settings:
        healthy = asyncio.run(
            run_worker(
                settings,
                once=once,
                interval=interval if interval is not None else settings.worker_interval_seconds,
            )
        )
    if once and not healthy:
        raise typer.Exit(1)


@cli.command("demo-data")
def demo_data() -> None:
    """Load the demo city, its grids and the demo accounts (does nothing if present)."""
    settings = get_settings()
    configure_logging(settings.log_level, json=settings.json_logs)
    if settings.env is Environment.production:
        raise typer.BadParameter("demo data is not for production")
    with ExitStack() as stack, _embedded_database(settings, stack) as settings:
        added = asyncio.run(_migrate(settings, demo=True))
    typer.echo("demo data loaded" if added else "demo data already present")


def render_openapi() -> str:
    from backend.app import create_app

    spec = create_app(Settings()).openapi()
    return json.dumps(spec, ensure_ascii=False, indent=2) + "\n"


def render_outputs(spec_path: Path, contract_path: Path) -> dict[Path, str]:
    """The spec and the mini-program contract generated from it."""
    from backend.contract import render_contract

    spec = render_openapi()
    return {spec_path: spec, contract_path: render_contract(json.loads(spec))}


@cli.command()
def openapi(
    output: Annotated[Path, typer.Option(help="Where the spec is written.")] = DEFAULT_SPEC,
    contract: Annotated[
        Path, typer.Option(help="Where the TypeScript client is written.")
    ] = DEFAULT_CONTRACT,
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 if a file differs from the app's spec.")
    ] = False,
) -> None:
    """Write the OpenAPI spec and the mini-program's typed client generated from it."""
    outputs = render_outputs(output, contract)
    if check:
        stale = [
            path
            for path, text in outputs.items()
            if not path.exists() or path.read_text(encoding="utf-8") != text
        ]
        if stale:
            names = ", ".join(str(p) for p in stale)
            typer.echo(f"stale: {names}; run `shanzhi openapi`", err=True)
            raise typer.Exit(1)
        typer.echo("openapi and contract are current")
        return
    for path, text in outputs.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {path}")


def main() -> None:
    cli()
