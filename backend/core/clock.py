"""The one source of "now", so tests can move time instead of sleeping, and China time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

# Days, dates in messages and calendar periods follow China time, where the users live.
LOCAL_TIME = ZoneInfo("Asia/Shanghai")


class Clock:
    def __init__(self) -> None:
        self._offset = timedelta(0)
        self._frozen: datetime | None = None

    def now(self) -> datetime:
        if self._frozen is not None:
            return self._frozen
        return datetime.now(UTC) + self._offset

    def advance(self, delta: timedelta) -> None:
        if self._frozen is not None:
            self._frozen += delta
        else:
            self._offset += delta

    def freeze(self, at: datetime) -> None:
        self._frozen = at

    def reset(self) -> None:
        self._offset = timedelta(0)
        self._frozen = None


clock = Clock()


def now() -> datetime:
    return clock.now()


def storable(moment: datetime | None) -> bool:
    """Can PostgreSQL take this time? A client's offset can push year 1 or 9999 out of the
    range Python converts to UTC, which the driver does before sending it."""
    if moment is None:
        return True
    try:
        moment.astimezone(UTC)
    except (OverflowError, ValueError):
        return False
    return True
