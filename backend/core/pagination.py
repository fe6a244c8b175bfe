"""Cursor pagination: opaque cursors over a unique, ordered key (time-ordered UUIDs)."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field
from sqlalchemy import Select

from backend.core.errors import ShanzhiError
from backend.core.text import Verbatim

T = TypeVar("T")

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class CursorInvalid(ShanzhiError):
    status = 400
    code = "request.cursor_invalid"
    message = {
        "zh-CN": "分页游标无效，请从第一页重新加载",
        "en": "Invalid cursor, reload from the start",
    }


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        None, description="Pass as `cursor` for the next page; null on the last page."
    )


def encode_cursor(key: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(key.bytes).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> uuid.UUID | None:
    if not cursor:
        return None
    try:
        return uuid.UUID(bytes=base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error) as error:
        raise CursorInvalid() from error


CursorParam = Annotated[Verbatim | None, Query(description="Cursor from the previous page.")]
LimitParam = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")]


R = TypeVar("R")


def cut_page(
    found: Sequence[R],
    limit: int,
    key: Callable[[R], uuid.UUID] = lambda row: row.id,  # type: ignore[attr-defined]
) -> tuple[Sequence[R], str | None]:
    """Lists fetch `limit + 1` rows after the cursor: the extra one only says there is more.
    Returns the rows to show and the cursor of the next page (None on the last page)."""
    shown = found[:limit]
    return shown, encode_cursor(key(shown[-1])) if len(found) > limit else None


Q = TypeVar("Q", bound=Select[*tuple[Any, ...]])


def keyset(query: Q, key: Any, after: uuid.UUID | None, *, newest_first: bool = True) -> Q:
    """Order `query` by its unique `key` column and start after the cursor's key: newest
    first (time-ordered ids descending) unless `newest_first` is False."""
    query = query.order_by(key.desc() if newest_first else key.asc())
    if after is not None:
        query = query.where(key < after if newest_first else key > after)
    return query
