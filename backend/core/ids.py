"""Identifiers: time-ordered UUIDv7, so primary-key indexes stay append-mostly."""

from __future__ import annotations

import uuid

import uuid_utils


def new_id() -> uuid.UUID:
    return uuid.UUID(bytes=uuid_utils.uuid7().bytes)
