"""Every table of every domain, imported in one place for Alembic and the tests."""

from __future__ import annotations

import backend.auth.models
import backend.cases.models
import backend.mediation.models
import backend.regions.models
import backend.storage.models
import backend.wechat.models  # noqa: F401
import points.models  # noqa: F401
import volunteers.models  # noqa: F401
from backend.core.database import metadata

__all__ = ["metadata"]
