"""The application: `create_app()` assembles settings, storage, WeChat and every router."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import FastAPI

from backend.auth.router import router as auth_router
from backend.cases import router as cases_router
from backend.core.config import Settings, get_settings
from backend.core.database import create_engine, create_sessionmaker
from backend.core.errors import PROBLEM_JSON, install_error_handlers
from backend.core.faults import ProblemMiddleware
from backend.core.ratelimit import create_limiter
from backend.core.security import PersonalData
from backend.mediation import router as mediation_router
from backend.ops import router as ops_router
from backend.ops.middleware import RequestLogMiddleware
from backend.regions import router as regions_router
from backend.regions import service as regions_service
from backend.stats import router as stats_router
from backend.storage import router as storage_router
from backend.storage.errors import StorageUnavailable
from backend.storage.service import ObjectStore
from backend.wechat.client import WechatClient
from points import router as points_router
from volunteers import router as volunteers_router

log = logging.getLogger("shanzhi.app")

API_DESCRIPTION = """
Backend of the Shanzhi (善治) community-governance mini-program.

Authenticate with `POST /v1/auth/wechat/login` and send the access token as
`Authorization: Bearer <token>`. Every error is RFC 9457 problem+json with a stable
`code`; messages follow `Accept-Language` (zh-CN by default, or en).
"""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    if not settings.database_url:
        raise RuntimeError("SHANZHI_DATABASE_URL is not set (`shanzhi serve` sets it)")
    engine = create_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        pool_timeout=settings.database_pool_timeout_seconds,
        connect_timeout=settings.database_connect_timeout_seconds,
        statement_timeout=settings.database_statement_timeout_seconds,
        idle_in_transaction_timeout=settings.database_idle_in_transaction_timeout_seconds,
    )
    app.state.engine = engine
    app.state.session_factory = create_sessionmaker(engine)
    app.state.object_store = ObjectStore(settings)
    try:
        await app.state.object_store.ensure_bucket()
    except StorageUnavailable:
        # The API still serves everything but uploads; /readyz says S3 is down.
        log.warning("object storage unreachable at start; uploads answer 503 until it is back")
    app.state.wechat = WechatClient(settings, engine)
    grid_map = app.state.grid_map
    async with app.state.session_factory() as session:
        await grid_map.reload(session)
    await grid_map.listen(engine, app.state.session_factory)
    log.info("ready")
    try:
        yield
    finally:
        await grid_map.stop_listening()
        await app.state.wechat.aclose()
        app.state.object_store.close()
        await engine.dispose()


def _problems_as_problem_json(app: FastAPI) -> None:
    """Error responses are documented as application/problem+json, as they are sent."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        spec = generate()
        for operations in spec.get("paths", {}).values():
            for operation in operations.values():
                for status, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if status.startswith(("4", "5")) and "application/json" in content:
                        schema = content.pop("application/json").get("schema")
                        content.setdefault(PROBLEM_JSON, {})["schema"] = schema
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="Shanzhi API",
        version="0.1.0",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        separate_input_output_schemas=False,
    )
    app.state.settings = settings
    app.state.personal_data = PersonalData(settings.data_key.get_secret_value())
    app.state.grid_map = regions_service.GridMap()
    app.state.rate_limiter = create_limiter(settings.redis_url)
    install_error_handlers(app)
    app.add_middleware(ProblemMiddleware)  # innermost: inside the request log and its id
    app.add_middleware(RequestLogMiddleware)
    app.add_middleware(CorrelationIdMiddleware, header_name="X-Request-ID")
    app.include_router(ops_router)
    app.include_router(auth_router, prefix="/v1")
    app.include_router(regions_router, prefix="/v1")
    app.include_router(cases_router, prefix="/v1")
    app.include_router(stats_router, prefix="/v1")
    app.include_router(storage_router, prefix="/v1")
    app.include_router(mediation_router, prefix="/v1")
    app.include_router(points_router, prefix="/v1")
    app.include_router(volunteers_router, prefix="/v1")
    _problems_as_problem_json(app)
    return app
