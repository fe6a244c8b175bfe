"""Alembic environment: async engine, the project's metadata, and an optional outer connection.

`backend.core.migrate.upgrade()` passes a live connection in `config.attributes["connection"]`
(tests and `shanzhi serve`); the `alembic` command line builds its own from the settings.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from backend.core.config import get_settings
from backend.models import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    url = config.get_main_option("sqlalchemy.url") or get_settings().database_url
    if not url:
        raise SystemExit(
            "set SHANZHI_DATABASE_URL (or run `shanzhi migrate`, which knows the embedded one)"
        )
    engine = create_async_engine(url)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    asyncio.run(_run_online())
