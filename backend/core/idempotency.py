"""The `Idempotency-Key` header every retryable write carries, and the request fingerprint
stored beside it (a retry must be the same request to get the first answer)."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from fastapi import Response, status
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.errors import ShanzhiError, problem_responses

# Visible ASCII, as a phone generates it (a UUID, or `report-<timestamp>-<random>`).
_KEY = re.compile(r"[\x21-\x7e]{1,128}")


class IdempotencyKeyRequired(ShanzhiError):
    status = 400
    code = "request.idempotency_key_required"
    message = {
        "zh-CN": "提交时缺少 Idempotency-Key 请求头，请更新小程序后重试",
        "en": "The Idempotency-Key header is missing; update the app and try again",
    }


class IdempotencyKeyInvalid(ShanzhiError):
    status = 400
    code = "request.idempotency_key_invalid"
    message = {
        "zh-CN": "Idempotency-Key 请求头须为 1 到 128 个可见字符",
        "en": "The Idempotency-Key header must be 1 to 128 visible characters",
    }


KEY_ERRORS = (IdempotencyKeyRequired, IdempotencyKeyInvalid)


def valid_key(key: object) -> bool:
    return isinstance(key, str) and _KEY.fullmatch(key) is not None


def check_idempotency_key(key: str | None) -> str:
    if key is None or not key.strip():
        raise IdempotencyKeyRequired()
    if not valid_key(key):
        raise IdempotencyKeyInvalid()
    return key


def _jsonable(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    raise TypeError(f"cannot hash {type(value).__name__}")


def request_hash(kind: str, payload: Mapping[str, Any], *, tag: str = "kind") -> str:
    """sha256 of the canonical request: the same request gives the same hash, byte for byte.

    `tag` names the field that carries `kind` (the ledger's stored hashes say `op`); ids and
    times are hashed as text (times in UTC).
    """
    canonical = json.dumps(
        {tag: kind, **payload},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=_jsonable,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


# --- finding the earlier request ----------------------------------------------------------


async def earlier_request(
    session: AsyncSession,
    owner: Any,
    owner_id: Any,
    key: str,
    digest: str,
    conflict: type[ShanzhiError],
) -> Any:
    """The row an earlier request of `owner_id` made with this key (None if there is none).

    `owner` is the column naming who sent it (e.g. `Case.submitted_by`); the table carries
    `idempotency_key` and `request_hash`. The same key with another request is `conflict`.
    """
    model = owner.class_
    earlier = (
        await session.execute(select(model).where(owner == owner_id, model.idempotency_key == key))
    ).scalar_one_or_none()
    if earlier is not None:
        same_request(earlier.request_hash, digest, conflict)
    return earlier


def same_request(stored: str, digest: str, conflict: type[ShanzhiError]) -> None:
    """An earlier request used this key: it must have been this very request."""
    if stored != digest:
        raise conflict()


# --- answering a retry ---------------------------------------------------------------------

REPLAY_HEADER = "Idempotent-Replay"
REPLAY_HEADER_DOC: dict[str, Any] = {
    REPLAY_HEADER: {
        "description": "`true` when an earlier request did the work and this one answers it.",
        "schema": {"type": "string", "enum": ["true"]},
    }
}


def replayable(
    errors: tuple[type[ShanzhiError], ...], model: type[Any], retry: str
) -> dict[int | str, dict[str, Any]]:
    """`responses=` of a write a phone may retry: its errors, and the 200 a retry gets
    (`retry` says what that 200 carries)."""
    responses = problem_responses(*errors)
    responses[200] = {
        "model": model,
        "description": f"{retry} (with the header `{REPLAY_HEADER}: true`).",
        "headers": REPLAY_HEADER_DOC,
    }
    return responses


def created_or_replayed(
    model: BaseModel, *, replayed: bool, created: int = status.HTTP_201_CREATED
) -> Response:
    """`created` (201) the first time; 200 with `Idempotent-Replay: true` for a retry."""
    return Response(
        content=model.model_dump_json(),
        media_type="application/json",
        status_code=status.HTTP_200_OK if replayed else created,
        headers={REPLAY_HEADER: "true"} if replayed else None,
    )
