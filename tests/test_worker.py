"""`shanzhi worker`: escalating overdue cases, closing unrated ones, several workers at once."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from backend import worker
from backend.auth.models import Role
from backend.cases import tasks, workflow
from backend.cases.models import Case, CaseEvent, CaseState
from backend.cases.workflow import Action, Actor
from backend.core.clock import clock, now
from backend.core.config import Settings
from backend.core.database import create_engine, create_sessionmaker
from backend.embedded.processes import free_port
from tests.factories.cases import (
    GANGDING,
    SHIPAI,
    committed_case,
    committed_world,
    make_category,
    open_case,
    reload,
)

STAFF = Actor(None, Role.community_staff.value)


async def system_escalations(session: AsyncSession, case: Case) -> list[CaseEvent]:
    return [
        event
        for event in await workflow.timeline(session, case.id)
        if event.action == "escalate" and event.actor_role == "system"
    ]


async def resolve(session: AsyncSession, case: Case) -> None:
    await workflow.apply(session, case, Action.accept, STAFF, changes={"accepted_at": now()})
    await workflow.apply(
        session, case, Action.resolve, STAFF, note="已处理", changes={"resolved_at": now()}
    )
    await session.commit()


# --- escalation ------------------------------------------------------------------------


async def test_an_overdue_case_moves_up_once_per_missed_deadline(
    demo: None, session: AsyncSession
) -> None:
    category = await make_category(session, response_hours=4, resolution_hours=72)
    case = await open_case(session, category)
    waiting = await open_case(session, await make_category(session, response_hours=48))
    at_the_top = await open_case(session, category)
    await session.execute(
        update(Case).where(Case.id == at_the_top.id).values(queue_path="gz")  # type: ignore[arg-type]
    )
    await session.commit()

    clock.advance(timedelta(hours=3, minutes=59))
    await tasks.escalate_overdue(session, now())
    assert (await reload(session, case)).queue_path == GANGDING  # not yet

    clock.advance(timedelta(minutes=2))
    assert await tasks.escalate_overdue(session, now()) >= 1
    case = await reload(session, case)
    assert (case.queue_path, case.escalation_level, case.state) == (SHIPAI, 1, "submitted")
    [event] = await system_escalations(session, case)
    assert event.actor_id is None and event.from_state == event.to_state == "submitted"
    assert event.data["reason"] == "response_overdue"
    assert (event.data["from"], event.data["to"]) == (GANGDING, SHIPAI)

    # The next ticks find the same missed deadline and leave the case where it is.
    clock.advance(timedelta(minutes=1))
    await tasks.escalate_overdue(session, now())
    await tasks.escalate_overdue(session, now())
    case = await reload(session, case)
    assert (case.queue_path, case.escalation_level) == (SHIPAI, 1)
    assert len(await system_escalations(session, case)) == 1
    assert (await reload(session, waiting)).escalation_level == 0
    at_the_top = await reload(session, at_the_top)
    assert (at_the_top.queue_path, at_the_top.escalation_level) == ("gz", 0)

    # Accepted at last, it then misses its resolution deadline: that is a new deadline.
    await workflow.apply(session, case, Action.accept, STAFF, changes={"accepted_at": now()})
    await session.commit()
    await tasks.escalate_overdue(session, now())
    assert len(await system_escalations(session, case)) == 1
    clock.advance(timedelta(hours=72))
    await tasks.escalate_overdue(session, now())
    await tasks.escalate_overdue(session, now())
    case = await reload(session, case)
    assert (case.queue_path, case.escalation_level) == ("gz.tianhe", 2)
    events = await system_escalations(session, case)
    assert [e.data["reason"] for e in events] == ["response_overdue", "resolution_overdue"]
    assert (events[1].data["from"], events[1].data["to"]) == (SHIPAI, "gz.tianhe")

    # Resolved, then reopened by the resident: a new round with fresh deadlines, and a
    # missed new response deadline moves it up once more.
    await workflow.apply(session, case, Action.resolve, STAFF, changes={"resolved_at": now()})
    await workflow.apply(
        session,
        case,
        Action.reopen,
        Actor(case.reporter_id, workflow.RESIDENT),
        changes={
            "reopen_count": 1,
            "resolved_at": None,
            "response_due_at": now() + timedelta(hours=4),
            "resolution_due_at": now() + timedelta(hours=72),
        },
    )
    await session.commit()
    await tasks.escalate_overdue(session, now())
    assert len(await system_escalations(session, case)) == 2
    clock.advance(timedelta(hours=5))
    await tasks.escalate_overdue(session, now())
    await tasks.escalate_overdue(session, now())
    case = await reload(session, case)
    assert (case.queue_path, case.escalation_level) == ("gz", 3)
    assert len(await system_escalations(session, case)) == 3


async def test_resolved_cases_nobody_rates_close_after_seven_days(
    demo: None, session: AsyncSession
) -> None:
    category = await make_category(session)
    unrated = await open_case(session, category)
    await resolve(session, unrated)
    rated = await open_case(session, category)
    await resolve(session, rated)
    await workflow.apply(
        session,
        rated,
        Action.rate,
        Actor(rated.reporter_id, workflow.RESIDENT),
        changes={"rating": 4, "closed_at": now()},
    )
    await session.commit()
    clock.advance(timedelta(days=2))
    later = await open_case(session, category)
    await resolve(session, later)

    clock.advance(timedelta(days=5) - timedelta(minutes=1))  # 7 days less a minute
    await tasks.close_unrated(session, now(), 7)
    assert (await reload(session, unrated)).state == CaseState.resolved

    clock.advance(timedelta(minutes=2))
    assert await tasks.close_unrated(session, now(), 7) >= 1
    unrated = await reload(session, unrated)
    assert unrated.state == CaseState.closed and unrated.closed_at is not None
    last = (await workflow.timeline(session, unrated.id))[-1]
    assert (last.action, last.from_state, last.to_state) == ("close", "resolved", "closed")
    assert (last.actor_role, last.actor_id) == ("system", None)
    assert (await reload(session, later)).state == CaseState.resolved  # resolved 5 days ago
    rated = await reload(session, rated)
    assert rated.rating == 4
    assert [e.action for e in await workflow.timeline(session, rated.id)][-1] == "rate"


# --- several workers -------------------------------------------------------------------


async def test_two_workers_at_once_escalate_each_case_once(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    world = await committed_world(engine, response_hours=1)
    cases = [await committed_case(engine, world) for _ in range(7)]
    clock.advance(timedelta(hours=2))
    started = now()
    factory = create_sessionmaker(engine)

    async def worker() -> int:
        async with factory() as session:
            # Small batches, so the two workers interleave over several of them.
            return await tasks.escalate_overdue(session, now(), batch_size=2)

    counts = await asyncio.gather(worker(), worker(), worker())
    # They never fought over a case (which would show as a failed, logged escalation).
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    async with factory() as session:
        for case in cases:
            stored = await session.get(Case, case.id)
            assert stored is not None
            assert (stored.queue_path, stored.escalation_level) == (f"{world.city}.d.s", 1)
            assert len(await system_escalations(session, stored)) == 1
        # Whatever else was overdue in the database, nothing was escalated twice.
        written = (
            await session.execute(
                select(func.count()).where(
                    CaseEvent.action == "escalate",  # type: ignore[arg-type]
                    CaseEvent.actor_role == "system",  # type: ignore[arg-type]
                    CaseEvent.created_at >= started,  # type: ignore[operator]
                )
            )
        ).scalar_one()
    assert sum(counts) == written >= len(cases)


async def test_two_workers_at_once_close_each_case_once(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    world = await committed_world(engine, response_hours=1)
    cases = [await committed_case(engine, world) for _ in range(5)]
    factory = create_sessionmaker(engine)
    async with factory() as session:
        for case in cases:
            loaded = await session.get(Case, case.id)
            assert loaded is not None
            await resolve(session, loaded)
    clock.advance(timedelta(days=8))
    started = now()

    async def worker() -> int:
        async with factory() as session:
            return await tasks.close_unrated(session, now(), 7, batch_size=2)

    counts = await asyncio.gather(worker(), worker())
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    async with factory() as session:
        for case in cases:
            closes = [e for e in await workflow.timeline(session, case.id) if e.action == "close"]
            assert len(closes) == 1
        written = (
            await session.execute(
                select(func.count()).where(
                    CaseEvent.action == "close",  # type: ignore[arg-type]
                    CaseEvent.created_at >= started,  # type: ignore[operator]
                )
            )
        ).scalar_one()
    assert sum(counts) == written >= len(cases)


async def test_a_failing_job_is_logged_and_the_others_still_run(
    engine: AsyncEngine,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = await committed_world(engine, response_hours=1)
    case = await committed_case(engine, world)
    factory = create_sessionmaker(engine)
    async with factory() as session:
        loaded = await session.get(Case, case.id)
        assert loaded is not None
        await resolve(session, loaded)

    async def broken(session: AsyncSession, at: object) -> int:
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(tasks, "escalate_overdue", broken)
    clock.advance(timedelta(days=8))
    caplog.set_level(logging.INFO, logger="shanzhi.worker")
    assert not (await worker.run_jobs(factory, worker.all_jobs(settings))).healthy
    assert "job escalate_overdue failed" in caplog.text and "database hiccup" in caplog.text
    assert re.search(r"worker run: escalated failed, closed [1-9]", caplog.text)
    async with factory() as session:
        stored = await session.get(Case, case.id)
        assert stored is not None and stored.state == CaseState.closed


async def test_a_database_that_is_down_costs_one_line_per_job_and_a_quick_retry(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    down = create_engine(
        f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/shanzhi",
        pool_size=1,
        connect_timeout=1,
    )
    caplog.set_level(logging.INFO, logger="shanzhi.worker")
    try:
        run = await worker.run_jobs(create_sessionmaker(down), worker.all_jobs(settings))
    finally:
        await down.dispose()
    assert run == worker.Run(healthy=False, outage=True)
    failures = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert failures and all(
        r.getMessage().endswith(": service.database_unavailable") and r.exc_info is None
        for r in failures
    )
    assert len(failures) == len(worker.all_jobs(settings))
    # Sooner than usual, then ever later, never longer than the interval.
    assert [worker.next_wait(60, n) for n in (0, 1, 2, 3, 7, 8)] == [60, 1, 2, 4, 60, 60]

    # The loop itself carries on: runs after 1 s, then 2 s, and never exits by itself.
    caplog.clear()
    dead = settings.model_copy(update={"database_url": down.url.render_as_string(False)})
    looping = asyncio.create_task(worker.run_worker(dead, once=False, interval=60))
    await asyncio.sleep(3.6)
    assert not looping.done()
    looping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await looping
    waits = re.findall(r"a part is down; next run in (\d+) s", caplog.text)
    assert waits[:2] == ["1", "2"]


# --- the command -----------------------------------------------------------------------


def _worker_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHANZHI_")}
    assert settings.database_url and settings.s3_endpoint and settings.s3_secret_key
    env.update(
        SHANZHI_ENV="test",
        SHANZHI_DATA_DIR=str(settings.data_dir),
        SHANZHI_DATABASE_URL=settings.database_url,
        SHANZHI_S3_ENDPOINT=settings.s3_endpoint,
        SHANZHI_S3_ACCESS_KEY=settings.s3_access_key or "",
        SHANZHI_S3_SECRET_KEY=settings.s3_secret_key.get_secret_value(),
        SHANZHI_S3_BUCKET=settings.s3_bucket,
        SHANZHI_LOG_JSON="false",
    )
    return env


async def _overdue_committed_case(engine: AsyncEngine) -> Case:
    world = await committed_world(engine)
    case = await committed_case(engine, world)
    async with create_sessionmaker(engine)() as session:
        # The command runs on the wall clock: the deadline is made to lie an hour back.
        await session.execute(
            update(Case)
            .where(Case.id == case.id)  # type: ignore[arg-type]
            .values(response_due_at=func.now() - timedelta(hours=1))
        )
        await session.commit()
    return case


async def _queue_of(engine: AsyncEngine, case_id: uuid.UUID) -> str:
    async with create_sessionmaker(engine)() as session:
        stored = await session.get(Case, case_id)
        assert stored is not None
        return stored.queue_path


def _command(*args: str) -> list[str]:
    return [sys.executable, "-c", "from backend.cli import main; main()", "worker", *args]


async def test_the_worker_command_runs_once(
    engine: AsyncEngine, settings: Settings, tmp_path: Path
) -> None:
    case = await _overdue_committed_case(engine)
    done = await asyncio.to_thread(
        subprocess.run,
        _command("--once"),
        env=_worker_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,  # no .env file of the project's
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    # Other tests' committed cases may be overdue too: at least this one was escalated.
    assert re.search(r"worker run: escalated [1-9]\d*, closed \d+, purged \d+", output), output
    assert await _queue_of(engine, case.id) == case.queue_path.rsplit(".", 1)[0]


async def test_the_worker_stops_cleanly_on_sigterm_and_sigint(
    engine: AsyncEngine, settings: Settings, tmp_path: Path
) -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        case = await _overdue_committed_case(engine)
        log_path = tmp_path / f"worker-{signum}.log"
        with log_path.open("w") as log:
            process = await asyncio.create_subprocess_exec(
                *_command("--interval", "0.2"),
                env=_worker_env(settings),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=tmp_path,
            )
            try:
                deadline = time.monotonic() + 60
                # Loops several times (each run logs), escalating the case on the first.
                while log_path.read_text().count("worker run:") < 3:
                    assert process.returncode is None, log_path.read_text()
                    assert time.monotonic() < deadline, log_path.read_text()
                    await asyncio.sleep(0.1)
                process.send_signal(signum)
                code = await asyncio.wait_for(process.wait(), 15)
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
        output = log_path.read_text()
        assert code == 0, output
        assert "worker stopped" in output and "Traceback" not in output
        assert await _queue_of(engine, case.id) == case.queue_path.rsplit(".", 1)[0]
