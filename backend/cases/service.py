"""Submitting reports and complaints, possible duplicates, and the resident's side of a case.

Submission is the hot path (every 随手拍 goes through it): a handful of statements, the
response built from what is already in memory. Idempotency rests on the database's unique
(submitted_by, idempotency_key): the insert runs in a savepoint, and when it loses to an
earlier (or concurrent) submission with the same key, the winner is read and answered.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Row, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.auth.principal import Principal
from backend.cases import schemas, workflow
from backend.cases.categories.service import active_category
from backend.cases.errors import (
    AlreadyRated,
    CannotSupportOwnCase,
    CaseNotFound,
    CaseNotOpen,
    CategoryInvalid,
    IdempotencyConflict,
    NotReporter,
    OutsideServiceArea,
    ReopenWindowPassed,
)
from backend.cases.models import (
    OPEN_STATES,
    Case,
    CaseAttachment,
    CaseKind,
    CaseState,
    CaseSupport,
    Category,
    Channel,
)
from backend.cases.queries import case_fields, case_view, view_fields, visible_case
from backend.cases.workflow import Action, Actor
from backend.core.clock import now
from backend.core.idempotency import check_idempotency_key, earlier_request, request_hash
from backend.regions.coords import to_wgs84
from backend.regions.geo import distance_m_text
from backend.regions.schemas import RegionBrief
from backend.regions.service import GridMap, LocatedGrid
from backend.storage import service as storage_service
from backend.storage.models import Upload, UploadPurpose
from backend.storage.service import ObjectStore, PreparedClaim

SUBMIT_PURPOSES = (UploadPurpose.case_photo, UploadPurpose.case_video)


# Printable ASCII without space: what survives every proxy and log line unchanged.

DUPLICATE_RADIUS_M = 100.0


DUPLICATE_WINDOW = timedelta(days=3)


MAX_DUPLICATES = 5


# Fewer metres than any degree of latitude has, so the bounding box is never too small.
_METRES_PER_DEGREE = 110_000.0


# Inlined, not bound: the planner can then use the partial index on open cases.
_OPEN = "state IN (" + ", ".join(f"'{state.value}'" for state in OPEN_STATES) + ")"


# --- Submission --------------------------------------------------------------------------


@dataclass(frozen=True)
class Submission:
    case: schemas.SubmissionOut
    replayed: bool  # an earlier submission with the same key, answered again


async def prepare_photos(
    session: AsyncSession,
    store: ObjectStore,
    principal: Principal,
    upload_ids: Sequence[uuid.UUID],
) -> PreparedClaim:
    """The S3 half of attaching a report's photos: copied and checked before anything is
    written, with no database connection held (`storage.service.prepare_claim`)."""
    return await storage_service.prepare_claim(
        session, store, principal.user_id, upload_ids, SUBMIT_PURPOSES
    )


async def submit(
    session: AsyncSession,
    *,
    grid_map: GridMap,
    store: ObjectStore,
    principal: Principal,
    kind: CaseKind,
    body: schemas.ReportCreate,
    idempotency_key: str | None,
    channel: Channel = Channel.miniapp,
    photos: PreparedClaim | None = None,
) -> Submission:
    """Open a report or complaint for the caller, or answer the one this key opened before.

    `channel` says how it came in: the app by default, or a volunteer's inspection. A caller
    that has written before it submits passes the photos it prepared before writing
    (`prepare_photos`), since S3 is asked with no database connection held.
    """
    key = check_idempotency_key(idempotency_key)
    digest = request_hash(kind.value, body.model_dump(mode="json"))
    lat, lng = to_wgs84(body.location.lat, body.location.lng, body.location.coord)
    try:
        located = grid_map.locate(lat, lng)
        if located is None:
            raise OutsideServiceArea()
        # The grid map knows the grid's row and the catalogue is cached: no round trip here.
        grid_row_id = located.grid.id
        if grid_row_id is None:
            raise OutsideServiceArea()
        category = await active_category(session, kind, body.category)
        if category is None:
            raise CategoryInvalid()
    except (OutsideServiceArea, CategoryInvalid):
        # A key already used answers as a key already used, whatever became of the place or
        # the category since (only a failing request pays for this look-up).
        earlier = await earlier_request(
            session, Case.submitted_by, principal.user_id, key, digest, IdempotencyConflict
        )
        if earlier is None:
            raise
        return await _replay(session, store, principal, earlier, digest)

    prepared = photos or await prepare_photos(session, store, principal, body.upload_ids)
    extra: dict[str, Any] = {}
    if isinstance(body, schemas.ComplaintCreate):
        extra = {"target_type": body.target.type, "target_name": body.target.name}
    opened = await workflow.open_case(
        session,
        kind=kind,
        category=category,
        description=body.description,
        lat=lat,
        lng=lng,
        address=body.address,
        grid_id=grid_row_id,
        grid_path=located.grid.code,
        queue_path=workflow.community_of(located.grid.code),
        submitted_by=principal.user_id,
        reporter_id=principal.user_id,
        actor=Actor(principal.user_id, workflow.RESIDENT),
        idempotency_key=key,
        request_hash=digest,
        channel=channel,
        anonymous=body.anonymous,
        extra=extra,
    )
    if opened is None:
        # The key was used before (or just now, by a request the insert waited for).
        # Answer the case it made, if the request is the same.
        winner = await earlier_request(
            session, Case.submitted_by, principal.user_id, key, digest, IdempotencyConflict
        )
        assert winner is not None, "ON CONFLICT found the key, so its case exists"
        return await _replay(session, store, principal, winner, digest)
    case, event = opened

    uploads: list[Upload] = []
    if body.upload_ids:
        uploads = await storage_service.claim_uploads(session, prepared)
        session.add_all(
            CaseAttachment(case_id=case.id, event_id=event.id, upload_id=upload.id, position=i)
            for i, upload in enumerate(uploads)
        )
        await session.flush()
    duplicates = await possible_duplicates(session, case)
    fields = case_fields(
        case,
        store=store,
        viewer=principal,
        category=category,
        regions=_located_regions(located),
        events=[(event, None)],
        attachments=[(event.seq, upload) for upload in uploads],
        reporter=principal.user,
    )
    return Submission(
        schemas.SubmissionOut(**fields, possible_duplicates=duplicates), replayed=False
    )


async def _replay(
    session: AsyncSession, store: ObjectStore, principal: Principal, earlier: Case, digest: str
) -> Submission:
    """The case an earlier request with this key made, if this request is the same one."""
    fields = await view_fields(session, store, earlier, viewer=principal)
    duplicates = await possible_duplicates(session, earlier)
    return Submission(
        schemas.SubmissionOut(**fields, possible_duplicates=duplicates), replayed=True
    )


def _located_regions(located: LocatedGrid) -> dict[str, RegionBrief]:
    refs = [located.grid, *located.ancestors]
    return {
        ref.code: RegionBrief(code=ref.code, name=ref.name, name_en=ref.name_en) for ref in refs
    }


# The bounding box lets the index narrow the rows first; the exact distance decides.
_NEARBY = text(
    f"""
    SELECT id, number, state, created_at, supporters, summary, distance
    FROM (
        SELECT id, number, state, created_at, supporters,
               left(description, :summary_chars) AS summary,
               {distance_m_text("lat", "lng", ":lat", ":lng")} AS distance
        FROM case_file
        WHERE category_id = :category_id AND kind = :kind AND {_OPEN}
          AND created_at >= :since AND id <> :case_id
          AND lat BETWEEN :south AND :north AND lng BETWEEN :west AND :east
    ) AS nearby
    WHERE distance <= :radius
    ORDER BY distance, id
    LIMIT :limit
    """
)


async def possible_duplicates(session: AsyncSession, case: Case) -> list[schemas.PossibleDuplicate]:
    """Open cases of the same kind and category within 100 m from the last 3 days."""
    dlat = DUPLICATE_RADIUS_M / _METRES_PER_DEGREE
    cos_lat = max(math.cos(math.radians(min(abs(case.lat) + dlat, 90.0))), 1e-6)
    dlng = min(DUPLICATE_RADIUS_M / (_METRES_PER_DEGREE * cos_lat), 180.0)
    rows = await session.execute(
        _NEARBY,
        {
            "summary_chars": schemas.SUMMARY_CHARS,
            "lat": case.lat,
            "lng": case.lng,
            "category_id": case.category_id,
            "kind": str(case.kind),
            "since": case.created_at - DUPLICATE_WINDOW,
            "case_id": case.id,
            "south": case.lat - dlat,
            "north": case.lat + dlat,
            "west": case.lng - dlng,
            "east": case.lng + dlng,
            "radius": DUPLICATE_RADIUS_M,
            "limit": MAX_DUPLICATES,
        },
    )
    return [
        schemas.PossibleDuplicate(
            id=row.id,
            number=row.number,
            state=row.state,
            distance_m=round(row.distance),
            created_at=row.created_at,
            supporters=row.supporters,
            summary=row.summary,
        )
        for row in rows.all()
    ]


# --- The resident's actions --------------------------------------------------------------


async def support(session: AsyncSession, principal: Principal, case_id: uuid.UUID) -> int:
    """Add the caller's +1 to an open case (once per person); the new count.

    Neither the version nor the timeline changes: staff working the case are not disturbed.
    """
    found: Row[Any] | None = (  # type: ignore[assignment]
        await session.execute(
            select(
                col(Case.kind), col(Case.state), col(Case.reporter_id), col(Case.supporters)
            ).where(col(Case.id) == case_id)
        )
    ).one_or_none()
    if found is None or found.kind == CaseKind.mediation:
        raise CaseNotFound()
    if found.reporter_id == principal.user_id:
        raise CannotSupportOwnCase()
    state = CaseState(found.state)
    if state not in OPEN_STATES:
        raise CaseNotOpen(state=state.value, state_zh=workflow.STATE_ZH[state])
    added = await session.execute(
        insert(CaseSupport)
        .values(case_id=case_id, user_id=principal.user_id, created_at=now())
        .on_conflict_do_nothing()
        .returning(col(CaseSupport.case_id))
    )
    if added.first() is None:
        return int(found.supporters)
    # Counted in the row itself, so concurrent +1s never lose one.
    counted = await session.execute(
        update(Case)
        .where(col(Case.id) == case_id)
        .values(supporters=col(Case.supporters) + 1)
        .returning(col(Case.supporters))
        .execution_options(synchronize_session=False)
    )
    return int(counted.scalar_one())


async def _own_case(session: AsyncSession, principal: Principal, case_id: uuid.UUID) -> Case:
    # Within sight first (404 otherwise), then the action: only the reporter (403).
    case = await visible_case(session, principal, case_id)
    if case.reporter_id != principal.user_id:
        raise NotReporter()
    return case


async def rate(
    session: AsyncSession,
    store: ObjectStore,
    principal: Principal,
    case_id: uuid.UUID,
    rating: int,
    comment: str | None,
) -> schemas.CaseOut:
    """The reporter rates a resolved case, which closes it."""
    case = await _own_case(session, principal, case_id)
    if case.state == CaseState.closed and case.rating is not None:
        # A retry from the phone gets the case as it is; a second opinion is refused.
        if case.rating != rating:
            raise AlreadyRated()
        return await case_view(session, store, case, viewer=principal)
    await workflow.apply(
        session,
        case,
        Action.rate,
        Actor(principal.user_id, workflow.RESIDENT),
        note=comment,
        data={"rating": rating},
        changes={"rating": rating, "rating_comment": comment, "closed_at": now()},
    )
    return await case_view(session, store, case, viewer=principal)


async def reopen(
    session: AsyncSession,
    store: ObjectStore,
    principal: Principal,
    case_id: uuid.UUID,
    reason: str,
    *,
    window_days: int,
) -> schemas.CaseOut:
    """The reporter disputes the result within `window_days` of its resolution."""
    case = await _own_case(session, principal, case_id)
    at = now()
    if workflow.allowed(Action.reopen, CaseState(case.state)):
        resolved_at = case.resolved_at or case.closed_at
        if resolved_at is not None and at > resolved_at + timedelta(days=window_days):
            raise ReopenWindowPassed(days=window_days)
    category = await session.get(Category, case.category_id)
    assert category is not None  # a foreign key
    await workflow.apply(
        session,
        case,
        Action.reopen,
        Actor(principal.user_id, workflow.RESIDENT),
        note=reason,
        changes={
            "reopen_count": case.reopen_count + 1,
            "resolved_at": None,
            "closed_at": None,
            "rating": None,
            "rating_comment": None,
            # Handled afresh: new deadlines from the category, as for a new case.
            "response_due_at": at + timedelta(hours=category.response_hours),
            "resolution_due_at": at + timedelta(hours=category.resolution_hours),
        },
    )
    return await case_view(session, store, case, viewer=principal)
