"""Inspections: the checklist of each inspection activity, filing a house's results, the lists.

A volunteer checked in at a rental-house inspection or fire-safety check answers the
checklist for each house. Every failed item (unless the volunteer says not to) becomes a
report in the case engine through `backend.cases.service.submit`, the one way a report is
opened: the volunteer is its reporter, it lies at the house and comes in on the `inspection`
channel. The inspection, its findings and their reports are written in the request's one
transaction: all of them, or (on any refusal) none.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.auth.principal import Principal, region_scope
from backend.cases import service as cases_service
from backend.cases.categories import service as categories_service
from backend.cases.models import Case, CaseKind, CaseState, Category, Channel
from backend.cases.schemas import ReportCreate
from backend.core.database import insert_unique
from backend.core.idempotency import check_idempotency_key, earlier_request, request_hash
from backend.core.pagination import keyset
from backend.regions.coords import to_wgs84
from backend.regions.schemas import LocationIn, PointOut
from backend.regions.service import GridMap
from backend.storage.service import ObjectStore
from volunteers.attendance.service import my_attendance
from volunteers.auth import ACTIVITY_HOSTS, own_volunteer, scoped_activity
from volunteers.errors import ActivityNotFound
from volunteers.inspections import schemas
from volunteers.inspections.errors import (
    ActivityNotOpen,
    AlreadyCheckedOut,
    CategoryUnavailable,
    HouseOutsideServiceArea,
    IdempotencyConflict,
    ItemUnknown,
    NotAnInspection,
    NotCheckedIn,
)
from volunteers.models import (
    INSPECTION_TYPES,
    Activity,
    ActivityState,
    ActivityType,
    Attendance,
    AttendanceState,
    Inspection,
    InspectionFinding,
    Volunteer,
)

# One inspection per volunteer and Idempotency-Key.
IDEMPOTENCY_CONSTRAINT = "uq_volunteer_inspection_volunteer_key"


# --- the checklists ------------------------------------------------------------------------

# Report categories of the demo catalogue; a city's admins may define them differently, and a
# missing or inactive one refuses the filing with `inspection.category_unavailable`.
FIRE_HAZARD = "fire_hazard"


PUBLIC_SECURITY = "public_security"


# `ReportCreate.description` takes at most this many characters.
DESCRIPTION_MAX = 1000


@dataclass(frozen=True)
class ChecklistItem:
    code: str
    label: str  # what to check, as the app shows it
    label_en: str
    finding: str  # what a failure means, in the words of the report it becomes
    category: str  # the report category a failure is filed under


_EXTINGUISHER = ChecklistItem(
    "fire_extinguisher",
    "灭火器配备且在有效期内",
    "Fire extinguisher present and in date",
    "灭火器缺失或过期",
    FIRE_HAZARD,
)


_ESCAPE_ROUTE = ChecklistItem(
    "escape_route",
    "疏散通道、楼梯畅通无杂物",
    "Escape route and stairs clear",
    "疏散通道或楼梯被堵塞",
    FIRE_HAZARD,
)


_GAS = ChecklistItem(
    "gas_safety",
    "燃气管道、阀门、软管完好，无泄漏",
    "Gas pipes, valves and hoses sound, no leaks",
    "燃气使用存在安全隐患",
    FIRE_HAZARD,
)


CHECKLISTS: dict[ActivityType, tuple[ChecklistItem, ...]] = {
    ActivityType.rental_inspection: (
        _EXTINGUISHER,
        _ESCAPE_ROUTE,
        ChecklistItem(
            "electrical_wiring",
            "电线规范，无私拉乱接，无电动车室内充电",
            "Safe wiring: no flying leads, no e-bikes charged indoors",
            "私拉乱接电线或电动车在室内充电",
            FIRE_HAZARD,
        ),
        _GAS,
        ChecklistItem(
            "smoke_alarm",
            "安装烟感报警器且工作正常",
            "Smoke alarm fitted and working",
            "未安装烟感报警器或报警器失效",
            FIRE_HAZARD,
        ),
        ChecklistItem(
            "tenant_registration",
            "租客已办理出租屋登记（派出所）",
            "Tenants registered with the police",
            "租客未办理出租屋登记",
            PUBLIC_SECURITY,
        ),
        ChecklistItem(
            "no_overcrowding",
            "无群租，居住人数符合规定",
            "Not overcrowded (no group renting)",
            "存在群租，居住人数超出规定",
            PUBLIC_SECURITY,
        ),
    ),
    ActivityType.fire_safety_check: (
        _EXTINGUISHER,
        _ESCAPE_ROUTE,
        ChecklistItem(
            "fire_doors",
            "防火门保持关闭，闭门器完好",
            "Fire doors kept closed, closers working",
            "防火门常开或闭门器损坏",
            FIRE_HAZARD,
        ),
        ChecklistItem(
            "electrical_wiring",
            "电线规范，无私拉乱接",
            "Safe wiring, no flying leads",
            "私拉乱接电线",
            FIRE_HAZARD,
        ),
        ChecklistItem(
            "ebike_charging",
            "无电动车在楼道或室内停放、充电",
            "No e-bikes parked or charged in corridors or indoors",
            "电动车在楼道或室内停放、充电",
            FIRE_HAZARD,
        ),
        _GAS,
    ),
}


assert set(CHECKLISTS) == INSPECTION_TYPES, "every inspection type has a checklist"


# How the report's description begins, per activity type.
FINDING_PREFIX: dict[ActivityType, str] = {
    ActivityType.rental_inspection: "出租屋检查发现",
    ActivityType.fire_safety_check: "消防安全检查发现",
}


def checklist_of(activity: Activity) -> tuple[ChecklistItem, ...]:
    """The checklist of the activity's type; 409 for an activity that is no inspection."""
    checklist = CHECKLISTS.get(ActivityType(activity.type))
    if checklist is None:
        raise NotAnInspection()
    return checklist


async def visible_activity(
    session: AsyncSession, principal: Principal, activity_id: uuid.UUID
) -> Activity:
    """An activity as a volunteer may see it: published or past; a draft only to its hosts."""
    found = await session.execute(
        select(Activity).where(
            col(Activity.id) == activity_id,
            or_(
                col(Activity.state) != ActivityState.draft.value,
                region_scope(Activity.region_path, principal, ACTIVITY_HOSTS),
            ),
        )
    )
    activity = found.scalar_one_or_none()
    if activity is None:
        raise ActivityNotFound()
    return activity


async def get_checklist(
    session: AsyncSession, principal: Principal, activity_id: uuid.UUID
) -> schemas.ChecklistOut:
    activity = await visible_activity(session, principal, activity_id)
    return schemas.ChecklistOut(
        activity_id=activity.id,
        type=activity.type,
        items=[
            schemas.ChecklistItemOut(
                code=item.code, label=item.label, label_en=item.label_en, category=item.category
            )
            for item in checklist_of(activity)
        ],
    )


# --- filing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filed:
    inspection: schemas.InspectionOut
    replayed: bool  # an earlier request with the same key, answered again


async def file_inspection(
    session: AsyncSession,
    *,
    grid_map: GridMap,
    store: ObjectStore,
    principal: Principal,
    activity_id: uuid.UUID,
    body: schemas.InspectionCreate,
    idempotency_key: str | None,
) -> Filed:
    """Record a house's checklist results and file each reported failure as a report.

    Checks, in order: the activity is visible (404) and an inspection (409), the caller an
    approved volunteer (404/403); a key used before answers its inspection (or 409 when the
    body differs), whatever happened since. Then: the activity is not cancelled and the
    caller is checked in there (409), every item is on the checklist (422), the house lies
    in the service area (422) and each category needed is in use (409), all before anything
    is written. The attendance row stays locked until commit, so a check-out waits for it.
    """
    key = check_idempotency_key(idempotency_key)
    activity = await visible_activity(session, principal, activity_id)
    checklist = {item.code: item for item in checklist_of(activity)}
    volunteer = await own_volunteer(session, principal)
    digest = request_hash(
        "inspection", {"activity_id": str(activity.id), **body.model_dump(mode="json")}
    )
    earlier = await earlier_request(
        session, Inspection.volunteer_id, volunteer.id, key, digest, IdempotencyConflict
    )
    if earlier is not None:
        return await _replay(session, activity, earlier, digest)
    # The photos of each report are copied and checked in S3 before anything is locked or
    # written, with no database connection held.
    photos = {
        result.item: await cases_service.prepare_photos(
            session, store, principal, result.upload_ids
        )
        for result in body.results
        if result.files_report
    }

    if activity.state == ActivityState.cancelled:
        raise ActivityNotOpen()
    attendance = _checked_in(
        await my_attendance(session, volunteer.id, activity.id, for_update=True)
    )
    unknown = [result.item for result in body.results if result.item not in checklist]
    if unknown:
        raise ItemUnknown(items=unknown)
    lat, lng = to_wgs84(body.location.lat, body.location.lng, body.location.coord)
    located = grid_map.locate(lat, lng)
    if located is None or located.grid.id is None:
        raise HouseOutsideServiceArea()
    reported = [result for result in body.results if result.files_report]
    for result in reported:
        await _require_category(session, checklist[result.item])

    inspection = Inspection(
        activity_id=activity.id,
        attendance_id=attendance.id,
        volunteer_id=volunteer.id,
        region_path=activity.region_path,
        idempotency_key=key,
        request_hash=digest,
        address=body.address,
        lat=lat,
        lng=lng,
        results=[_stored_result(result) for result in body.results],
    )
    if not await insert_unique(session, inspection, races={IDEMPOTENCY_CONSTRAINT}):
        # A concurrent request with the same key got there first: answer what it made.
        winner = await earlier_request(
            session, Inspection.volunteer_id, volunteer.id, key, digest, IdempotencyConflict
        )
        assert winner is not None, "the key's inspection exists: the insert yielded to it"
        return await _replay(session, activity, winner, digest)

    findings: dict[str, schemas.FindingOut] = {}
    for result in reported:
        item = checklist[result.item]
        submission = await cases_service.submit(
            session,
            grid_map=grid_map,
            store=store,
            principal=principal,
            kind=CaseKind.report,
            body=ReportCreate(
                category=item.category,
                description=_description(activity, item, result.note, body.address),
                location=LocationIn(lat=lat, lng=lng, coord="wgs84"),
                address=body.address,
                upload_ids=result.upload_ids,
            ),
            # Derived from the inspection: a retried inspection never opens a second report.
            idempotency_key=f"inspection:{inspection.id}:{item.code}",
            channel=Channel.inspection,
            photos=photos[result.item],
        )
        case = submission.case
        session.add(InspectionFinding(inspection_id=inspection.id, item=item.code, case_id=case.id))
        findings[item.code] = schemas.FindingOut(
            case_id=case.id, number=case.number, state=case.state
        )
    if findings:
        # A new list, so the JSONB column is seen as changed.
        inspection.results = [
            {**stored, "case_id": str(findings[stored["item"]].case_id)}
            if stored["item"] in findings
            else stored
            for stored in inspection.results
        ]
    await session.flush()
    return Filed(_view(inspection, activity.type, findings), replayed=False)


def _checked_in(attendance: Attendance | None) -> Attendance:
    if attendance is None:
        raise NotCheckedIn()
    if attendance.state != AttendanceState.checked_in:
        raise AlreadyCheckedOut()
    return attendance


async def _require_category(session: AsyncSession, item: ChecklistItem) -> Category:
    # The same (cached) look-up `submit` makes, so both agree on what is in use.
    category = await categories_service.active_category(session, CaseKind.report, item.category)
    if category is None:
        raise CategoryUnavailable(
            item=item.code, label=item.label, label_en=item.label_en, category=item.category
        )
    return category


def _stored_result(result: schemas.ResultIn) -> dict[str, Any]:
    return {
        "item": result.item,
        "ok": result.ok,
        "note": result.note,
        "upload_ids": [str(upload) for upload in result.upload_ids],
        "report": result.files_report,
        "case_id": None,
    }


def _description(activity: Activity, item: ChecklistItem, note: str | None, address: str) -> str:
    """E.g. "出租屋检查发现：灭火器缺失或过期。已过期两年 地址：岗顶西街 12 号 302 房"."""
    text = f"{FINDING_PREFIX[ActivityType(activity.type)]}：{item.finding}。"
    if note:
        text += f"{note} "
    return (text + f"地址：{address}")[:DESCRIPTION_MAX]


async def _replay(
    session: AsyncSession, activity: Activity, earlier: Inspection, digest: str
) -> Filed:
    findings = await _findings(session, [earlier.id])
    return Filed(_view(earlier, activity.type, findings.get(earlier.id, {})), replayed=True)


# --- reading -------------------------------------------------------------------------------


async def _findings(
    session: AsyncSession, inspection_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, dict[str, schemas.FindingOut]]:
    """Each inspection's reports by item, with their number and state as they are now."""
    if not inspection_ids:
        return {}
    rows = await session.execute(
        select(
            col(InspectionFinding.inspection_id),
            col(InspectionFinding.item),
            col(Case.id),
            col(Case.number),
            col(Case.state),
        )
        .join(Case, col(Case.id) == col(InspectionFinding.case_id))
        .where(col(InspectionFinding.inspection_id).in_(inspection_ids))
    )
    found: dict[uuid.UUID, dict[str, schemas.FindingOut]] = {}
    for inspection_id, item, case_id, number, state in rows.all():
        found.setdefault(inspection_id, {})[item] = schemas.FindingOut(
            case_id=case_id, number=number, state=CaseState(state)
        )
    return found


def _view(
    inspection: Inspection,
    activity_type: ActivityType,
    findings: dict[str, schemas.FindingOut],
) -> schemas.InspectionOut:
    return schemas.InspectionOut(**_fields(inspection, activity_type, findings))


def _fields(
    inspection: Inspection,
    activity_type: ActivityType,
    findings: dict[str, schemas.FindingOut],
) -> dict[str, Any]:
    labels = {item.code: item for item in CHECKLISTS.get(ActivityType(activity_type), ())}
    results = []
    for stored in inspection.results:
        item = labels.get(stored["item"])
        results.append(
            schemas.ResultOut(
                item=stored["item"],
                label=item.label if item else stored["item"],
                label_en=item.label_en if item else stored["item"],
                ok=stored["ok"],
                note=stored.get("note"),
                upload_ids=stored.get("upload_ids", []),
                report=stored.get("report", False),
                finding=findings.get(stored["item"]),
            )
        )
    return {
        "id": inspection.id,
        "activity_id": inspection.activity_id,
        "address": inspection.address,
        "location": PointOut(lat=inspection.lat, lng=inspection.lng),
        "results": results,
        "created_at": inspection.created_at,
    }


async def my_inspections(
    session: AsyncSession,
    principal: Principal,
    activity_id: uuid.UUID,
    *,
    after: uuid.UUID | None,
    limit: int,
) -> list[schemas.InspectionOut]:
    """The caller's inspections at the activity, newest first (ids are time-ordered)."""
    activity = await visible_activity(session, principal, activity_id)
    # Not only while approved: a suspended volunteer still sees what they filed.
    volunteer = await own_volunteer(session, principal, approved=False)
    query = (
        select(Inspection)
        .where(
            col(Inspection.activity_id) == activity.id,
            col(Inspection.volunteer_id) == volunteer.id,
        )
        .limit(limit)
    )
    query = keyset(query, col(Inspection.id), after)
    inspections = list((await session.execute(query)).scalars())
    findings = await _findings(session, [i.id for i in inspections])
    return [_view(i, activity.type, findings.get(i.id, {})) for i in inspections]


async def activity_inspections(
    session: AsyncSession,
    principal: Principal,
    activity_id: uuid.UUID,
    *,
    after: uuid.UUID | None,
    limit: int,
) -> list[schemas.StaffInspectionOut]:
    """Every inspection at an activity the caller hosts (404 outside their regions)."""
    activity = await scoped_activity(session, principal, activity_id, ACTIVITY_HOSTS)
    query = (
        select(Inspection, Volunteer)
        .join(Volunteer, col(Volunteer.id) == col(Inspection.volunteer_id))
        .where(
            col(Inspection.activity_id) == activity.id,
            region_scope(Inspection.region_path, principal, ACTIVITY_HOSTS),
        )
        .limit(limit)
    )
    query = keyset(query, col(Inspection.id), after)
    rows = (await session.execute(query)).all()
    findings = await _findings(session, [inspection.id for inspection, _ in rows])
    return [
        schemas.StaffInspectionOut(
            **_fields(inspection, activity.type, findings.get(inspection.id, {})),
            volunteer=schemas.InspectorOut(
                id=volunteer.id, number=volunteer.number, real_name=volunteer.real_name
            ),
        )
        for inspection, volunteer in rows
    ]
