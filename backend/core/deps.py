"""What the application holds for every request, as `Annotated` dependencies.

`create_app()` puts these on `app.state`; routers take them as parameters and never read
`request.app.state` themselves. The domain types are imported for the type checker only:
the kernel depends on no domain at run time. They are `async def` on purpose: FastAPI runs a
plain `def` dependency in its thread pool, a hop no attribute read is worth.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.core.config import Settings
from backend.core.security import PersonalData

if TYPE_CHECKING:
    from backend.regions.service import GridMap
    from backend.storage.service import ObjectStore
    from backend.wechat.client import WechatClient


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _personal_data(request: Request) -> PersonalData:
    personal_data: PersonalData = request.app.state.personal_data
    return personal_data


async def _engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


async def _object_store(request: Request) -> Any:
    return request.app.state.object_store


async def _grid_map(request: Request) -> Any:
    return request.app.state.grid_map


async def _wechat(request: Request) -> Any:
    return request.app.state.wechat


SettingsDep = Annotated[Settings, Depends(_settings)]
EngineDep = Annotated[AsyncEngine, Depends(_engine)]
PersonalDataDep = Annotated[PersonalData, Depends(_personal_data)]
StoreDep = Annotated["ObjectStore", Depends(_object_store)]
GridMapDep = Annotated["GridMap", Depends(_grid_map)]
WechatDep = Annotated["WechatClient", Depends(_wechat)]
