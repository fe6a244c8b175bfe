"""Engine, the one-transaction-per-request session, and shared column types."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import MetaData
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
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


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args={"server_settings": {"application_name": "shanzhi"}},
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
