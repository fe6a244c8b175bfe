"""What the API answers when a part is down, and when a bug escapes: never a dropped
connection.

Starlette answers an exception no handler took with a 500 from its outermost middleware and
then re-raises it, and uvicorn closes the keep-alive connection under a client that may be
reusing it. `ProblemMiddleware` sits inside that one and answers every such exception itself:
a database that is down, restarting, out of connections or too slow is a 503
`service.database_unavailable` with `Retry-After`; anything else is a real bug, logged with
its traceback, and a 500 `internal`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from types import TracebackType

import asyncpg
from sqlalchemy import exc as sa_exc
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.core.errors import (
    DatabaseUnavailable,
    InternalError,
    ShanzhiError,
    problem_response,
)

log = logging.getLogger("shanzhi.faults")


# SQLSTATEs that mean "not now" rather than "not like this": the connection failed or was
# cut, the server is shutting down or starting, it has no connection left, or a statement
# ran past `statement_timeout` (or sat idle in a transaction past its timeout).
_TRANSIENT_SQLSTATE_CLASSES = ("08",)
_TRANSIENT_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300", "57014", "25P03"})


def _causes(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)  # SQLAlchemy's wrapper keeps the driver's error
        if isinstance(orig, BaseException) and id(orig) not in seen:
            yield from _causes(orig)
        current = current.__cause__ or current.__context__


def _raised_by_driver(traceback: TracebackType | None) -> bool:
    while traceback is not None:
        module = traceback.tb_frame.f_globals.get("__name__", "")
        if module.startswith(("asyncpg", "sqlalchemy")):
            return True
        traceback = traceback.tb_next
    return False


def is_database_outage(error: BaseException) -> bool:
    """Did `error` come from the database being unreachable, restarting, full or too slow
    (worth a retry), rather than from the statement itself?"""
    for cause in _causes(error):
        if isinstance(cause, sa_exc.TimeoutError):  # no pooled connection came free in time
            return True
        if isinstance(cause, sa_exc.DBAPIError) and cause.connection_invalidated:
            return True
        if isinstance(cause, asyncpg.exceptions.ConnectionDoesNotExistError):
            return True
        sqlstate = getattr(cause, "sqlstate", None)
        if (
            isinstance(cause, asyncpg.PostgresError)
            and isinstance(sqlstate, str)
            and (
                sqlstate.startswith(_TRANSIENT_SQLSTATE_CLASSES) or sqlstate in _TRANSIENT_SQLSTATES
            )
        ):
            return True
        # Refused, reset or timed out while the driver connected or talked to the server.
        if isinstance(cause, OSError) and _raised_by_driver(cause.__traceback__):
            return True
    return False


def error_for_unhandled(error: Exception) -> ShanzhiError:
    """The answer to an exception no handler took (and one log line about it)."""
    if is_database_outage(error):
        log.warning("database unavailable: %s", _describe(error))
        return DatabaseUnavailable()
    log.error("unhandled error", exc_info=error)
    return InternalError()


def _describe(error: BaseException) -> str:
    return " <- ".join(f"{type(c).__name__}: {c}".strip()[:200] for c in _causes(error))


class ProblemMiddleware:
    """Answers what escaped every exception handler as problem+json, so the connection stays
    open for the client's next request (pure ASGI: nothing on the hot path but a flag)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as error:
            if started:  # half an answer is out: only closing the connection can end it
                raise
            response = problem_response(error_for_unhandled(error), Request(scope))
            await response(scope, receive, send)
