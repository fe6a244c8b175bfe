"""The case state machine: one table of allowed transitions, one function that applies them.

Every change of a case goes through `apply()`, which checks the table, bumps the case's
version (optimistic locking: two staff acting at once, one wins, the other gets 409), and
appends the timeline event. Nothing else writes `Case.state`.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from backend.cases.errors import CaseChangedMeanwhile, CaseTransitionNotAllowed
from backend.cases.models import (
    NUMBER_PREFIX,
    Case,
    CaseEvent,
    CaseKind,
    CaseState,
    Category,
    Channel,
)
from backend.core.clock import LOCAL_TIME, now
from backend.core.ids import new_id

# Case numbers carry the local date where the city is.
SYSTEM = "system"
RESIDENT = "resident"


class Action(StrEnum):
    submit = "submit"
    accept = "accept"
    assign = "assign"
    start = "start"
    resolve = "resolve"
    reject = "reject"
    escalate = "escalate"
    comment = "comment"
    support = "support"
    rate = "rate"
    reopen = "reopen"
    close = "close"


S = CaseState
# action -> {state it may start from: state it leads to}. `None` keeps the state.
TRANSITIONS: dict[Action, dict[CaseState, CaseState | None]] = {
    Action.accept: {S.submitted: S.accepted, S.reopened: S.accepted},
    Action.assign: {S.submitted: None, S.accepted: None, S.in_progress: None, S.reopened: None},
    Action.start: {S.accepted: S.in_progress},
    Action.resolve: {S.accepted: S.resolved, S.in_progress: S.resolved},
    Action.reject: {S.submitted: S.rejected, S.accepted: S.rejected, S.reopened: S.rejected},
    Action.escalate: {S.submitted: None, S.accepted: None, S.in_progress: None, S.reopened: None},
    Action.comment: {state: None for state in CaseState},
    Action.support: {S.submitted: None, S.accepted: None, S.in_progress: None, S.reopened: None},
    Action.rate: {S.resolved: S.closed},
    Action.reopen: {S.resolved: S.reopened, S.closed: S.reopened},
    Action.close: {S.resolved: S.closed},
}

STATE_ZH = {
    S.submitted: "已提交",
    S.accepted: "已受理",
    S.in_progress: "处理中",
    S.resolved: "已办结",
    S.closed: "已关闭",
    S.rejected: "不予受理",
    S.reopened: "已重新打开",
}
ACTION_ZH = {
    Action.submit: "提交",
    Action.accept: "受理",
    Action.assign: "指派",
    Action.start: "开始处理",
    Action.resolve: "办结",
    Action.reject: "不予受理",
    Action.escalate: "上报",
    Action.comment: "备注",
    Action.support: "附议",
    Action.rate: "评价",
    Action.reopen: "重新打开",
    Action.close: "关闭",
}
ACTION_EN = {
    Action.submit: "submitted",
    Action.accept: "accepted",
    Action.assign: "assigned",
    Action.start: "started",
    Action.resolve: "resolved",
    Action.reject: "rejected",
    Action.escalate: "escalated",
    Action.comment: "commented on",
    Action.support: "supported",
    Action.rate: "rated",
    Action.reopen: "reopened",
    Action.close: "closed",
}


def allowed(action: Action, state: CaseState) -> bool:
    return state in TRANSITIONS[action]


def next_state(action: Action, state: CaseState) -> CaseState:
    """The state `action` leads to from `state`, or 409 `case.illegal_transition`."""
    table = TRANSITIONS[action]
    if state not in table:
        raise CaseTransitionNotAllowed(
            state=state.value,
            state_zh=STATE_ZH[state],
            action_zh=ACTION_ZH[action],
            action_en=ACTION_EN[action],
        )
    target = table[state]
    return state if target is None else target


@dataclass(frozen=True)
class Actor:
    user_id: uuid.UUID | None
    role: str  # "resident", a staff role, or "system"


async def _append_event(
    session: AsyncSession,
    case: Case,
    *,
    action: Action,
    actor: Actor,
    from_state: CaseState | None,
    to_state: CaseState,
    note: str | None,
    data: dict[str, Any] | None,
    at: datetime,
) -> CaseEvent:
    # Sequence numbers come from the case's version, which the same statement bumped.
    event = CaseEvent(
        case_id=case.id,
        seq=case.version,
        action=action.value,
        from_state=from_state.value if from_state else None,
        to_state=to_state.value,
        actor_id=actor.user_id,
        actor_role=actor.role,
        note=note,
        data=data or {},
        created_at=at,
    )
    session.add(event)
    await session.flush()
    return event


async def apply(
    session: AsyncSession,
    case: Case,
    action: Action,
    actor: Actor,
    *,
    expected_version: int | None = None,
    note: str | None = None,
    data: dict[str, Any] | None = None,
    changes: dict[str, Any] | None = None,
) -> CaseEvent:
    """Apply `action` to `case`: check the rules, write the case and its timeline event.

    `expected_version` is the version the caller saw (staff send it back); without it the
    version read with the case is used, so a concurrent change still makes this one fail.
    `changes` are further columns the action sets (assignee, resolved_at, rating, ...).
    """
    at = now()
    current = CaseState(case.state)
    target = next_state(action, current)
    seen = expected_version if expected_version is not None else case.version
    values: dict[str, Any] = {"state": target.value, "version": seen + 1, "updated_at": at}
    values.update(changes or {})
    result = await session.execute(
        update(Case)  # type: ignore[call-overload]
        .where(Case.id == case.id, Case.version == seen)  # type: ignore[arg-type]
        .values(**values)
        .returning(Case.version)
        .execution_options(synchronize_session=False)
    )
    if result.scalar_one_or_none() is None:
        raise CaseChangedMeanwhile()
    # The row is written; mirror it on the object without making it dirty (no 2nd UPDATE).
    for key, value in values.items():
        set_committed_value(case, key, value)
    return await _append_event(
        session,
        case,
        action=action,
        actor=actor,
        from_state=current,
        to_state=target,
        note=note,
        data=data,
        at=at,
    )


# Opening a case is the hot path of report intake: the case row, its number (from a
# sequence) and its first timeline event go to the database as ONE statement, and the
# idempotency key is settled by ON CONFLICT instead of a savepoint.
_OPEN_CASE = text(
    """
    WITH new_case AS (
        INSERT INTO case_file (
            id, number, kind, category_id, description, state, priority, channel,
            reporter_id, submitted_by, anonymous, contact_phone_ciphertext,
            contact_phone_masked, idempotency_key, request_hash, lat, lng, address, grid_id,
            location_path, queue_path, escalation_level, target_type, target_name,
            supporters, version, response_due_at, resolution_due_at, reopen_count, created_at
        ) VALUES (
            :id, :number_prefix || lpad(nextval(CAST(:sequence AS regclass))::text, 6, '0'),
            :kind, :category_id, :description, :state, :priority, :channel,
            :reporter_id, :submitted_by, :anonymous, :contact_phone_ciphertext,
            :contact_phone_masked, :idempotency_key, :request_hash, :lat, :lng, :address,
            :grid_id, CAST(:location_path AS ltree), CAST(:queue_path AS ltree),
            :escalation_level, :target_type, :target_name, :supporters, :version,
            :response_due_at, :resolution_due_at, :reopen_count, :created_at
        )
        ON CONFLICT (submitted_by, idempotency_key) DO NOTHING
        RETURNING id, number
    )
    INSERT INTO case_event (
        id, case_id, seq, action, to_state, actor_id, actor_role, data, created_at
    )
    SELECT :event_id, new_case.id, 1, 'submit', :state, :actor_id, :actor_role,
           CAST(:event_data AS jsonb), :created_at
    FROM new_case
    RETURNING (SELECT number FROM new_case)
    """
)
_OPTIONAL_COLUMNS = (
    "contact_phone_ciphertext",
    "contact_phone_masked",
    "target_type",
    "target_name",
)


async def open_case(
    session: AsyncSession,
    *,
    kind: CaseKind,
    category: Category,
    description: str,
    lat: float,
    lng: float,
    address: str | None,
    grid_id: uuid.UUID,
    grid_path: str,
    queue_path: str,
    submitted_by: uuid.UUID,
    reporter_id: uuid.UUID | None,
    actor: Actor,
    idempotency_key: str,
    request_hash: str,
    channel: Channel = Channel.miniapp,
    anonymous: bool = False,
    extra: dict[str, Any] | None = None,
) -> tuple[Case, CaseEvent] | None:
    """Create a submitted case with its number, deadlines from the category and first event.

    Returns None when the submitter already used `idempotency_key` (the earlier case is
    theirs to look up); ON CONFLICT also waits for a concurrent transaction using the same
    key and then yields to it. `queue_path` is the region whose staff handle it first (the
    grid's community); `extra` sets optional columns (complaint target, contact phone).
    """
    unknown = set(extra or {}) - set(_OPTIONAL_COLUMNS)
    assert not unknown, f"open_case cannot set {unknown}"
    at = now()
    row: dict[str, Any] = {
        "id": new_id(),
        "kind": kind.value,
        "category_id": category.id,
        "description": description,
        "state": CaseState.submitted.value,
        "priority": "normal",
        "channel": Channel(channel).value,
        "reporter_id": reporter_id,
        "submitted_by": submitted_by,
        "anonymous": anonymous,
        "idempotency_key": idempotency_key,
        "request_hash": request_hash,
        "lat": lat,
        "lng": lng,
        "address": address,
        "grid_id": grid_id,
        "location_path": grid_path,
        "queue_path": queue_path,
        "escalation_level": 0,
        "supporters": 0,
        "version": 1,
        "reopen_count": 0,
        "response_due_at": at + timedelta(hours=category.response_hours),
        "resolution_due_at": at + timedelta(hours=category.resolution_hours),
        "created_at": at,
        **dict.fromkeys(_OPTIONAL_COLUMNS),
        **(extra or {}),
    }
    event_data = {"channel": row["channel"]}
    event_id = new_id()
    day = at.astimezone(LOCAL_TIME).strftime("%Y%m%d")
    number = (
        await session.execute(
            _OPEN_CASE,
            {
                **row,
                "number_prefix": f"{NUMBER_PREFIX[kind]}-{day}-",
                "sequence": f"case_number_{kind.value}_seq",
                "event_id": event_id,
                "actor_id": actor.user_id,
                "actor_role": actor.role,
                "event_data": json.dumps(event_data),
            },
        )
    ).scalar_one_or_none()
    if number is None:
        return None
    case = Case(**row, number=number)
    event = CaseEvent(
        id=event_id,
        case_id=case.id,
        seq=1,
        action=Action.submit.value,
        from_state=None,
        to_state=CaseState.submitted.value,
        actor_id=actor.user_id,
        actor_role=actor.role,
        note=None,
        data=event_data,
        created_at=at,
    )
    # Both rows exist: make the objects persistent without reading them back.
    for written in (case, event):
        make_transient_to_detached(written)
        session.add(written)
    return case, event


async def timeline(session: AsyncSession, case_id: uuid.UUID) -> list[CaseEvent]:
    rows = await session.execute(
        select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.seq)  # type: ignore[arg-type]
    )
    return list(rows.scalars())


def community_of(grid_path: str) -> str:
    """A grid's community: the queue a new case lands in."""
    return grid_path.rsplit(".", 1)[0]


def parent_of(path: str) -> str | None:
    return path.rsplit(".", 1)[0] if "." in path else None
