"""Column helpers shared by every table."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, func
from sqlmodel import Field

from backend.core.clock import now
from backend.core.ids import new_id


def id_field() -> Any:
    return Field(default_factory=new_id, primary_key=True)


def created_at_field() -> Any:
    return Field(
        default_factory=now,
        sa_type=DateTime(timezone=True),
        sa_column_kwargs={"server_default": func.now(), "nullable": False},
    )


def timestamp_field(*, nullable: bool = True, index: bool = False) -> Any:
    return Field(
        default=None,
        sa_type=DateTime(timezone=True),
        nullable=nullable,
        index=index,
    )


__all__ = ["created_at_field", "datetime", "id_field", "timestamp_field", "uuid"]
