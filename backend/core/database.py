"""Engine, the one-transaction-per-request session, and shared column types."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import MetaData, event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.types import UserDefinedType
from sqlmodel import SQLModel

from backend.core.errors import ShanzhiError

# Constraint names are part of the schema: Alembic needs them stable to drop or alter them.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata: MetaData = SQLModel.metadata


class Ltree(UserDefinedType[str]):
    """PostgreSQL `ltree`: materialized region paths such as `gz.tianhe.shipai`."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "LTREE"

    class comparator_factory(UserDefinedType.Comparator[str]):
        def descendant_of(self, other: Any) -> Any:
            return self.op("<@", return_type=_Boolean())(other)

        def ancestor_of(self, other: Any) -> Any:
            return self.op("@>", return_type=_Boolean())(other)


def _Boolean() -> Any:
    from sqlalchemy import Boolean

    return Boolean()


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    pool_timeout: float = 30.0,
    connect_timeout: float = 10.0,
    statement_timeout: float | None = None,
    idle_in_transaction_timeout: float | None = None,
) -> AsyncEngine:
    """An engine whose waits are bounded: for a pooled connection (`pool_timeout`), for a new
    one (`connect_timeout`), and, when given, for one statement and for a transaction left
    idle (seconds; PostgreSQL ends either, and the request answers 503)."""
    server_settings = {"application_name": "shanzhi"}
    if statement_timeout:
        server_settings["statement_timeout"] = str(round(statement_timeout * 1000))
    if idle_in_transaction_timeout:
        server_settings["idle_in_transaction_session_timeout"] = str(
            round(idle_in_transaction_timeout * 1000)
        )
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=pool_timeout,
        pool_pre_ping=True,
        connect_args={"timeout": connect_timeout, "server_settings": server_settings},
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def violated_constraint(error: IntegrityError) -> str | None:
    """The name of the constraint a failed statement violated (asyncpg reports it)."""
    cause = getattr(error.orig, "__cause__", None)
    name = getattr(cause, "constraint_name", None) or getattr(error.orig, "constraint_name", None)
    return name if isinstance(name, str) else None


async def insert_unique(
    session: AsyncSession,
    *rows: object,
    errors: Mapping[str, Callable[[], BaseException]] | None = None,
    races: Collection[str] = (),
) -> bool:
    """Add `rows` (none: just the pending changes) and flush them inside a savepoint, so a
    uniqueness the database enforces becomes an answer instead of a failed transaction.

    A violation of a constraint named in `errors` raises what its factory makes; one named
    in `races` returns False (a concurrent request got there first: the caller answers with
    the winner's row). Any other violation propagates. True when everything was written.
    """
    try:
        async with session.begin_nested():
            session.add_all(rows)
            await session.flush()
    except IntegrityError as error:
        constraint = violated_constraint(error)
        if errors and constraint is not None and constraint in errors:
            raise errors[constraint]() from error
        if constraint in races:
            return False
        raise
    return True


# --- a request that waits on something slow ------------------------------------------

_WROTE = "shanzhi.wrote"  # session.info: this transaction wrote or locked rows


@event.listens_for(Session, "do_orm_execute")
def _note_writes(state: ORMExecuteState) -> None:
    statement = state.statement
    if isinstance(statement, TextClause):
        wrote = not statement.text.lstrip().upper().startswith(("SELECT", "WITH"))
    else:
        wrote = bool(statement.is_dml) or getattr(statement, "_for_update_arg", None) is not None
    if wrote:
        state.session.info[_WROTE] = True


@event.listens_for(Session, "after_flush")
def _note_flush(session: Session, context: object) -> None:
    session.info[_WROTE] = True


@event.listens_for(Session, "after_transaction_end")
def _forget_writes(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the outermost transaction: its writes are settled
        session.info.pop(_WROTE, None)


async def release_connection(session: AsyncSession) -> None:
    """Hand the request's database connection back to the pool before a slow wait outside
    the database (S3, WeChat), so the wait holds no connection idle in a transaction.

    Only for a request that has read and not yet written or locked anything: its transaction
    so far is ended (nothing to keep), and the next statement begins a new one. Reading
    first and writing after is then two transactions, which READ COMMITTED makes no
    different from one. Called after a write it raises: those writes must commit together
    with the rest, so the slow call belongs before them.
    """
    if session.new or session.dirty or session.deleted or session.info.get(_WROTE):
        raise RuntimeError("release_connection() after the request wrote: call it earlier")
    if session.in_transaction():
        await session.commit()


AfterCommit = Callable[[AsyncSession], Awaitable[None]]


def after_commit(session: AsyncSession, hook: AfterCommit) -> None:
    """Run `hook` once the request's transaction has committed (e.g. refresh a cache)."""
    session.info.setdefault("after_commit", []).append(hook)


async def run_in_transaction(session: AsyncSession) -> None:
    """Commit the request's work, then run the hooks registered with `after_commit`."""
    await session.commit()
    hooks: list[AfterCommit] = session.info.pop("after_commit", [])
    for hook in hooks:
        await hook(session)


async def _request_session(request: Request) -> AsyncIterator[AsyncSession]:
    # scope="function" below: the commit happens before the response is sent, so a failed
    # commit is the client's error response, never a 200 for work that was lost.
    factory: Callable[[], AsyncSession] = request.app.state.session_factory
    async with factory() as session:
        try:
            yield session
            await run_in_transaction(session)
        except ShanzhiError as error:
            if error.commit_before_raising:
                await run_in_transaction(session)
            else:
                await session.rollback()
            raise
        except BaseException:
            await session.rollback()
            raise


SessionDep = Annotated[AsyncSession, Depends(_request_session, scope="function")]
