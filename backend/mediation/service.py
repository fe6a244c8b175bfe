"""The mediation request, the respondents' invitations and consent, withdrawal, and the
mediation as each side sees it.

Mediation is voluntary: the applicant names the other side, each respondent gets an
invitation code (only its keyed hash is stored), and the dispute goes to a mediator only
once every respondent has accepted. A decline, or silence past the consent deadline, ends
it as not mediated, with advice on other routes. Contact details stay with their owner: a
party sees only their own masked phone, the mediator and supervisors every party's masked
phone, and nobody ever a full number.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.auth.principal import Principal
from backend.cases import service as cases_service
from backend.cases import workflow
from backend.cases.errors import IdempotencyConflict, OutsideServiceArea
from backend.cases.models import Case, CaseAttachment, CaseEvent, CaseKind, CaseState, Category
from backend.cases.schemas import AttachmentOut
from backend.cases.workflow import Action, Actor
from backend.core.clock import now
from backend.core.i18n import Language
from backend.core.idempotency import check_idempotency_key, request_hash
from backend.core.security import PersonalData, mask_phone
from backend.mediation import assignment, schemas
from backend.mediation.auth import Seen, Viewer, visible_mediation
from backend.mediation.errors import (
    AlreadyParty,
    ApplicantOnly,
    ConsentAlreadyGiven,
    ConsentClosed,
    DisputeTypeUnavailable,
    InvitationAnswered,
    InvitationNotFound,
    InvitationUsed,
    MediationEnded,
    OwnInvitation,
    PartyNotFound,
    PhoneRequired,
    PreferredStudioInvalid,
    RespondentDuplicate,
    RespondentIsYou,
)
from backend.mediation.models import (
    OPEN_MEDIATION_STATES,
    Consent,
    Mediation,
    MediationParty,
    MediationState,
    Mediator,
    PartyRole,
    Studio,
)
from backend.mediation.routes import advice_for, route_out
from backend.regions.coords import to_wgs84
from backend.regions.models import Region
from backend.regions.schemas import RegionBrief
from backend.regions.service import GridMap
from backend.storage import service as storage_service
from backend.storage.models import Upload, UploadPurpose
from backend.storage.service import ObjectStore

EVIDENCE_PURPOSES = (UploadPurpose.case_photo, UploadPurpose.case_video)
SYSTEM_ACTOR = Actor(None, workflow.SYSTEM)

# Invitation codes are read aloud and typed from a chat: no 0/O or 1/I to confuse.
# 32 symbols, 10 of them: 2^50 codes, and lookups are rate-limited per user.
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
CODE_LENGTH = 10

CONSENT_ZH: dict[Consent, str] = {
    Consent.pending: "待答复",
    Consent.accepted: "已同意",
    Consent.declined: "已拒绝",
    Consent.expired: "已过期",
}


# --- invitation codes ----------------------------------------------------------------------


def new_invitation_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(code: str) -> str | None:
    """The code as issued, from what a person typed (any case, spaces or dashes), or None
    when it cannot be one."""
    cleaned = code.strip().upper().replace("-", "").replace(" ", "")
    if len(cleaned) != CODE_LENGTH or any(c not in CODE_ALPHABET for c in cleaned):
        return None
    return cleaned


def _share_text(
    applicant_name: str, dispute_name: str, number: str, code: str, due: datetime
) -> str:
    deadline = due.astimezone(workflow.LOCAL_TIME).strftime("%Y-%m-%d %H:%M")
    return (
        f"【善治】{applicant_name}邀请您参加“{dispute_name}”调解（案件编号 {number}）。"
        f"请打开微信小程序“善治”，在“调解邀请”中输入邀请码 {code}，"
        f"并于 {deadline} 前答复是否同意调解。调解自愿，您也可以拒绝。"
    )


def _issued(
    party: MediationParty,
    code: str,
    *,
    applicant_name: str,
    category: Category,
    number: str,
    due: datetime,
) -> schemas.InvitationIssued:
    return schemas.InvitationIssued(
        party_id=party.id,
        name=party.name,
        code=code,
        share_text=_share_text(applicant_name, category.name, number, code, due),
        consent_due_at=due,
    )


# --- the request ---------------------------------------------------------------------------

REPLAY_HINT: dict[Language, str] = {
    "zh-CN": "这是之前已提交的调解申请，邀请码只在首次提交时显示；如需再次发送，请对相应的"
    "被申请人重新生成邀请码",
    "en": "This request was made before; invitation codes are shown only once. Re-issue an "
    "invitation to get a new code for a respondent.",
}


@dataclass(frozen=True)
class Requested:
    mediation: schemas.MediationCreated
    replayed: bool  # an earlier request with the same key, answered again


async def request_mediation(
    session: AsyncSession,
    *,
    grid_map: GridMap,
    store: ObjectStore,
    personal_data: PersonalData,
    principal: Principal,
    body: schemas.MediationRequest,
    idempotency_key: str | None,
    consent_hours: int,
    time_limit_days: int,
    language: Language,
) -> Requested:
    """Open a mediation for the caller and invite each respondent, or answer the one this
    key opened before (without its codes: only their hashes are kept)."""
    key = check_idempotency_key(idempotency_key)
    digest = request_hash(CaseKind.mediation.value, body.model_dump(mode="json"))
    earlier = await _case_by_key(session, principal.user_id, key)
    if earlier is not None:
        return await _replay(session, store, principal, earlier, digest, language)

    user = principal.user
    if user.phone_hash is None or user.phone_ciphertext is None:
        raise PhoneRequired()
    phone_hashes = [personal_data.lookup_hash(r.phone) for r in body.respondents]
    if user.phone_hash in phone_hashes:
        raise RespondentIsYou()
    if len(set(phone_hashes)) != len(phone_hashes):
        raise RespondentDuplicate()
    lat, lng = to_wgs84(body.location.lat, body.location.lng, body.location.coord)
    located = grid_map.locate(lat, lng)
    if located is None or located.grid.id is None:
        raise OutsideServiceArea()
    category = await cases_service.active_category(
        session, CaseKind.mediation, body.dispute_type.value
    )
    if category is None:
        raise DisputeTypeUnavailable()
    if body.preferred_studio_id is not None:
        studio = await session.get(Studio, body.preferred_studio_id)
        if studio is None or not studio.active:
            raise PreferredStudioInvalid()

    opened = await workflow.open_case(
        session,
        kind=CaseKind.mediation,
        category=category,
        description=body.description,
        lat=lat,
        lng=lng,
        address=body.address,
        grid_id=located.grid.id,
        grid_path=located.grid.code,
        queue_path=workflow.community_of(located.grid.code),
        submitted_by=user.id,
        reporter_id=user.id,
        actor=Actor(user.id, workflow.RESIDENT),
        idempotency_key=key,
        request_hash=digest,
    )
    if opened is None:
        # A concurrent request with this key won the insert: answer what it made.
        winner = await _case_by_key(session, user.id, key)
        assert winner is not None, "ON CONFLICT found the key, so its case exists"
        return await _replay(session, store, principal, winner, digest, language)
    case, event = opened
    if body.upload_ids:
        uploads = await storage_service.claim_uploads(
            session, store, user.id, body.upload_ids, EVIDENCE_PURPOSES
        )
        session.add_all(
            CaseAttachment(case_id=case.id, event_id=event.id, upload_id=upload.id, position=i)
            for i, upload in enumerate(uploads)
        )

    at = now()
    mediation = Mediation(
        case_id=case.id,
        dispute_type=body.dispute_type,
        claim=body.claim,
        state=MediationState.awaiting_consent,
        applicant_id=user.id,
        region_path=located.grid.code,
        preferred_studio_id=body.preferred_studio_id,
        consent_due_at=at + timedelta(hours=consent_hours),
        due_at=at + timedelta(days=time_limit_days),
        created_at=at,
    )
    session.add(mediation)
    await session.flush()
    applicant = MediationParty(
        case_id=case.id,
        role=PartyRole.applicant,
        user_id=user.id,
        name=body.applicant_name,
        phone_ciphertext=user.phone_ciphertext,
        phone_hash=user.phone_hash,
        phone_masked=user.phone_masked,
        consent=Consent.accepted,
        consent_at=at,
        created_at=at,
    )
    session.add(applicant)
    invited: list[tuple[MediationParty, str]] = []
    for respondent, phone_hash in zip(body.respondents, phone_hashes, strict=True):
        code = new_invitation_code()
        party = MediationParty(
            case_id=case.id,
            role=PartyRole.respondent,
            name=respondent.name,
            phone_ciphertext=personal_data.encrypt(respondent.phone),
            phone_hash=phone_hash,
            phone_masked=mask_phone(respondent.phone),
            invitation_hash=personal_data.lookup_hash(code),
            invited_at=at,
            consent=Consent.pending,
            created_at=at,
        )
        session.add(party)
        invited.append((party, code))
    await session.flush()

    seen = Seen(mediation, case, Viewer.applicant, applicant)
    fields = await _view_fields(session, store, seen, user.id)
    invitations = [
        _issued(
            party,
            code,
            applicant_name=applicant.name,
            category=category,
            number=case.number,
            due=mediation.consent_due_at,
        )
        for party, code in invited
    ]
    return Requested(
        schemas.MediationCreated(**fields, invitations=invitations, hint=None), replayed=False
    )


async def _case_by_key(session: AsyncSession, user_id: uuid.UUID, key: str) -> Case | None:
    found = await session.execute(
        select(Case).where(col(Case.submitted_by) == user_id, col(Case.idempotency_key) == key)
    )
    return found.scalar_one_or_none()


async def _replay(
    session: AsyncSession,
    store: ObjectStore,
    principal: Principal,
    earlier: Case,
    digest: str,
    language: Language,
) -> Requested:
    """The mediation an earlier request with this key opened, if this request is the same."""
    if earlier.kind != CaseKind.mediation or earlier.request_hash != digest:
        raise IdempotencyConflict()
    seen = await visible_mediation(session, principal, earlier.id)
    fields = await _view_fields(session, store, seen, principal.user_id)
    return Requested(
        schemas.MediationCreated(**fields, invitations=[], hint=REPLAY_HINT[language]),
        replayed=True,
    )


# --- the read model ------------------------------------------------------------------------

# Timeline data never carries contact details or minutes by rule; ids of people and rows
# are left out too, as the roles say who acted.
_PRIVATE_KEYS = frozenset({"minutes", "phone", "attended"})


def _public_data(data: dict[str, Any]) -> dict[str, Any]:
    return {
        key: value
        for key, value in data.items()
        if isinstance(value, str | int | float | bool)
        and key not in _PRIVATE_KEYS
        and not key.endswith(("_id", "_ids"))
    }


async def _regions(session: AsyncSession, paths: set[str]) -> dict[str, RegionBrief]:
    rows = await session.execute(
        select(col(Region.path), col(Region.name), col(Region.name_en)).where(
            col(Region.path).in_(paths)
        )
    )
    return {
        path: RegionBrief(code=path, name=name, name_en=name_en) for path, name, name_en in rows
    }


async def _parties(session: AsyncSession, case_id: uuid.UUID) -> list[MediationParty]:
    rows = await session.execute(
        select(MediationParty)
        .where(col(MediationParty.case_id) == case_id)
        # 'applicant' sorts before 'respondent'; ids are time-ordered.
        .order_by(col(MediationParty.role), col(MediationParty.id))
        .execution_options(populate_existing=True)
    )
    return list(rows.scalars())


def _party_out(party: MediationParty, *, viewer: Viewer, user_id: uuid.UUID) -> schemas.PartyOut:
    mine = party.user_id is not None and party.user_id == user_id
    sees_every_phone = viewer in (Viewer.mediator, Viewer.supervisor)
    return schemas.PartyOut(
        id=party.id,
        role=party.role,
        name=party.name,
        consent=party.consent,
        consent_at=party.consent_at,
        decline_reason=party.decline_reason,
        phone=party.phone_masked if mine or sees_every_phone else None,
        confirmed_version=party.confirmed_version,
        is_you=mine,
    )


async def _timeline(
    session: AsyncSession, mediation: Mediation, parties: Sequence[MediationParty]
) -> list[schemas.TimelineEntryOut]:
    events = list(
        (
            await session.execute(
                select(CaseEvent)
                .where(col(CaseEvent.case_id) == mediation.case_id)
                .order_by(col(CaseEvent.seq))
            )
        ).scalars()
    )
    respondents = {p.user_id for p in parties if p.role == PartyRole.respondent and p.user_id}
    actors = {e.actor_id for e in events if e.actor_id is not None}
    mediators: set[uuid.UUID] = set()
    if actors:
        mediators = set(
            (
                await session.execute(
                    select(col(Mediator.user_id)).where(col(Mediator.user_id).in_(actors))
                )
            ).scalars()
        )

    def by(event: CaseEvent) -> str:
        if event.actor_role == workflow.SYSTEM or event.actor_id is None:
            return "system"
        if event.actor_id == mediation.applicant_id:
            return "applicant"
        if event.actor_id in respondents:
            return "respondent"
        if event.actor_id in mediators:
            return "mediator"
        return "supervisor"

    return [
        schemas.TimelineEntryOut(
            seq=event.seq,
            action=event.action,
            from_state=event.from_state,
            to_state=event.to_state,
            by=by(event),
            note=event.note,
            data=_public_data(event.data),
            at=event.created_at,
        )
        for event in events
    ]


async def _evidence(
    session: AsyncSession, store: ObjectStore, case_id: uuid.UUID
) -> list[AttachmentOut]:
    rows = await session.execute(
        select(col(CaseEvent.seq), Upload)
        .select_from(CaseAttachment)
        .join(Upload, col(Upload.id) == col(CaseAttachment.upload_id))
        .outerjoin(CaseEvent, col(CaseEvent.id) == col(CaseAttachment.event_id))
        .where(col(CaseAttachment.case_id) == case_id)
        .order_by(col(CaseEvent.seq).nulls_last(), col(CaseAttachment.position))
    )
    return [
        AttachmentOut(
            id=upload.id,
            url=storage_service.view_url(store, upload),
            content_type=upload.content_type,
            event_seq=seq,
        )
        for seq, upload in rows.all()
    ]


async def _mediator_out(
    session: AsyncSession, mediator_id: uuid.UUID | None
) -> schemas.MediatorOut | None:
    if mediator_id is None:
        return None
    row = (
        await session.execute(
            select(Mediator, col(Studio.name))
            .outerjoin(Studio, col(Studio.id) == col(Mediator.studio_id))
            .where(col(Mediator.id) == mediator_id)
        )
    ).first()
    if row is None:
        return None
    mediator, studio_name = row
    return schemas.MediatorOut(
        display_name=mediator.display_name, title=mediator.title, studio_name=studio_name
    )


async def _view_fields(
    session: AsyncSession, store: ObjectStore, seen: Seen, user_id: uuid.UUID
) -> dict[str, Any]:
    mediation, case = seen.mediation, seen.case
    category = await session.get(Category, case.category_id)
    assert category is not None  # a foreign key
    community = workflow.community_of(mediation.region_path)
    regions = await _regions(session, {community, mediation.region_path})
    parties = await _parties(session, mediation.case_id)
    preferred = (
        await session.get(Studio, mediation.preferred_studio_id)
        if mediation.preferred_studio_id is not None
        else None
    )
    state = MediationState(mediation.state)
    return {
        "id": mediation.case_id,
        "number": case.number,
        "state": state,
        "viewer": seen.viewer,
        "dispute_type": mediation.dispute_type,
        "dispute_type_name": category.name,
        "dispute_type_name_en": category.name_en,
        "description": case.description,
        "claim": mediation.claim,
        "address": case.address,
        "place": regions.get(community) or RegionBrief(code=community, name=community),
        "grid": regions.get(mediation.region_path)
        or RegionBrief(code=mediation.region_path, name=mediation.region_path),
        "evidence": await _evidence(session, store, mediation.case_id),
        "parties": [_party_out(p, viewer=seen.viewer, user_id=user_id) for p in parties],
        "mediator": await _mediator_out(session, mediation.mediator_id),
        "preferred_studio_name": preferred.name if preferred is not None else None,
        "consent_due_at": mediation.consent_due_at,
        "due_at": mediation.due_at,
        "assigned_at": mediation.assigned_at,
        "escalated_at": mediation.escalated_at,
        "ended_at": mediation.ended_at,
        "agreement": (
            schemas.AgreementOut(
                text=mediation.agreement_text,
                version=mediation.agreement_version,
                judicial_confirmation=mediation.judicial_confirmation,
            )
            if mediation.agreement_text is not None
            else None
        ),
        "referral": route_out(mediation.referral) if mediation.referral else None,
        "outcome_note": mediation.outcome_note,
        "advice": advice_for(mediation.dispute_type)
        if state is MediationState.not_mediated
        else [],
        "timeline": await _timeline(session, mediation, parties),
        "created_at": mediation.created_at,
        "updated_at": mediation.updated_at,
    }


async def mediation_view(
    session: AsyncSession, store: ObjectStore, seen: Seen, *, viewer: Principal
) -> schemas.MediationOut:
    """The mediation as the viewer may see it (the caller has checked they may see it)."""
    return schemas.MediationOut(**await _view_fields(session, store, seen, viewer.user_id))


async def get_mediation(
    session: AsyncSession, store: ObjectStore, principal: Principal, case_id: uuid.UUID
) -> schemas.MediationOut:
    seen = await visible_mediation(session, principal, case_id)
    return await mediation_view(session, store, seen, viewer=principal)


async def my_mediations(
    session: AsyncSession,
    principal: Principal,
    *,
    state: MediationState | None,
    after: uuid.UUID | None,
    limit: int,
) -> list[schemas.MediationListItem]:
    """The caller's mediations as a party (applicant, or a respondent who accepted),
    newest first (case ids are time-ordered)."""
    query = (
        select(Mediation, Case, Category, col(MediationParty.role))
        .join(Case, col(Case.id) == col(Mediation.case_id))
        .join(Category, col(Category.id) == col(Case.category_id))
        .join(MediationParty, col(MediationParty.case_id) == col(Mediation.case_id))
        .where(
            col(MediationParty.user_id) == principal.user_id,
            col(MediationParty.consent) == Consent.accepted.value,
        )
        .order_by(col(Mediation.case_id).desc())
        .limit(limit)
    )
    if state is not None:
        query = query.where(col(Mediation.state) == state.value)
    if after is not None:
        query = query.where(col(Mediation.case_id) < after)
    return [
        schemas.MediationListItem(
            id=mediation.case_id,
            number=case.number,
            state=mediation.state,
            role=role,
            dispute_type=mediation.dispute_type,
            dispute_type_name=category.name,
            dispute_type_name_en=category.name_en,
            summary=case.description[: schemas.SUMMARY_CHARS],
            consent_due_at=mediation.consent_due_at,
            due_at=mediation.due_at,
            ended_at=mediation.ended_at,
            created_at=mediation.created_at,
            updated_at=mediation.updated_at,
        )
        for mediation, case, category, role in (await session.execute(query)).all()
    ]


# --- invitations and consent ---------------------------------------------------------------


@dataclass(frozen=True)
class Invited:
    party: MediationParty
    mediation: Mediation
    case: Case


async def _invited(
    session: AsyncSession, personal_data: PersonalData, code: str, *, lock: bool
) -> Invited:
    """The respondent's invitation behind `code`, with its mediation (locked with `lock`).

    The code is never stored: it is found by its keyed hash, as a phone number is.
    """
    normal = normalise_code(code)
    if normal is None:
        raise InvitationNotFound()
    digest = personal_data.lookup_hash(normal)
    by_code = (
        select(MediationParty)
        .where(
            col(MediationParty.invitation_hash) == digest,
            col(MediationParty.role) == PartyRole.respondent.value,
        )
        .execution_options(populate_existing=True)
    )
    party = (await session.execute(by_code)).scalar_one_or_none()
    if party is None:
        raise InvitationNotFound()
    query = select(Mediation).where(col(Mediation.case_id) == party.case_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    mediation = (await session.execute(query)).scalar_one()
    if lock:
        # Read again under the lock: another answer or a re-issue may have come meanwhile.
        party = (await session.execute(by_code)).scalar_one_or_none()
        if party is None:
            raise InvitationNotFound()
    return Invited(party, mediation, await _current_case(session, mediation.case_id))


async def _current_case(session: AsyncSession, case_id: uuid.UUID) -> Case:
    """The case as committed now. Read after the mediation's lock is held, in a statement of
    its own: a row read in the locking statement comes from the snapshot taken before the
    wait, and would carry a version the request that held the lock has since moved on."""
    found = await session.execute(
        select(Case).where(col(Case.id) == case_id).execution_options(populate_existing=True)
    )
    return found.scalar_one()


def _check_holder(invited: Invited, user_id: uuid.UUID) -> None:
    """The caller may use this code: not the applicant, and not after someone else did."""
    if invited.mediation.applicant_id == user_id:
        raise OwnInvitation()
    if invited.party.user_id is not None and invited.party.user_id != user_id:
        raise InvitationUsed()


def _check_open(invited: Invited, at: datetime) -> None:
    if (
        invited.mediation.state != MediationState.awaiting_consent
        or at > invited.mediation.consent_due_at
        or invited.party.consent != Consent.pending
    ):
        raise ConsentClosed()


async def _invitation_view(
    session: AsyncSession, invited: Invited, user_id: uuid.UUID
) -> schemas.InvitationOut:
    party, mediation, case = invited.party, invited.mediation, invited.case
    category = await session.get(Category, case.category_id)
    assert category is not None  # a foreign key
    applicant_name = (
        await session.execute(
            select(col(MediationParty.name)).where(
                col(MediationParty.case_id) == mediation.case_id,
                col(MediationParty.role) == PartyRole.applicant.value,
            )
        )
    ).scalar_one()
    community = workflow.community_of(mediation.region_path)
    regions = await _regions(session, {community})
    state = MediationState(mediation.state)
    accepted = party.user_id == user_id and party.consent == Consent.accepted
    return schemas.InvitationOut(
        number=case.number,
        state=state,
        dispute_type=mediation.dispute_type,
        dispute_type_name=category.name,
        dispute_type_name_en=category.name_en,
        description=case.description,
        claim=mediation.claim,
        applicant_name=applicant_name,
        invited_as=party.name,
        place=regions.get(community) or RegionBrief(code=community, name=community),
        consent_due_at=mediation.consent_due_at,
        consent=party.consent,
        mediation_id=mediation.case_id if accepted else None,
        advice=advice_for(mediation.dispute_type) if state is MediationState.not_mediated else [],
    )


async def get_invitation(
    session: AsyncSession, personal_data: PersonalData, principal: Principal, code: str
) -> schemas.InvitationOut:
    """What the invited respondent sees before answering."""
    invited = await _invited(session, personal_data, code, lock=False)
    _check_holder(invited, principal.user_id)
    return await _invitation_view(session, invited, principal.user_id)


async def _answer(
    session: AsyncSession,
    personal_data: PersonalData,
    principal: Principal,
    code: str,
    consent: Consent,
) -> tuple[Invited, bool]:
    """Lock the mediation and check the caller may answer; (invitation, answered before)."""
    invited = await _invited(session, personal_data, code, lock=True)
    _check_holder(invited, principal.user_id)
    party = invited.party
    if party.user_id == principal.user_id:
        # The same person again: the same answer is a retry, the other one a change of mind.
        if party.consent == consent:
            return invited, True
        answered = Consent(party.consent)
        raise ConsentAlreadyGiven(consent=answered.value, consent_zh=CONSENT_ZH[answered])
    _check_open(invited, now())
    other_role = await session.execute(
        select(col(MediationParty.id)).where(
            col(MediationParty.case_id) == party.case_id,
            col(MediationParty.user_id) == principal.user_id,
        )
    )
    if other_role.first() is not None:
        raise AlreadyParty()
    return invited, False


async def _record_consent(
    session: AsyncSession,
    invited: Invited,
    principal: Principal,
    consent: Consent,
    reason: str | None,
    at: datetime,
) -> None:
    party, mediation = invited.party, invited.mediation
    party.user_id = principal.user_id
    party.consent = consent
    party.consent_at = at
    party.decline_reason = reason
    mediation.updated_at = at
    mediation.version += 1
    await session.flush()
    # The timeline says that a respondent answered and how, nothing about who they are.
    await workflow.apply(
        session,
        invited.case,
        Action.comment,
        Actor(principal.user_id, workflow.RESIDENT),
        data={"step": "consent", "consent": consent.value},
    )


async def _find_mediator(
    session: AsyncSession, mediation: Mediation, case: Case, at: datetime
) -> None:
    """Every respondent agreed: give the dispute to a mediator (of the preferred studio when
    one fits), or leave it to the supervisors when nobody fits now."""
    mediator = None
    if mediation.preferred_studio_id is not None:
        mediator = await assignment.pick_mediator(
            session,
            mediation.dispute_type,
            mediation.region_path,
            studio_id=mediation.preferred_studio_id,
        )
    if mediator is None:
        mediator = await assignment.pick_mediator(
            session, mediation.dispute_type, mediation.region_path
        )
    if mediator is None:
        mediation.state = MediationState.awaiting_mediator
        mediation.updated_at = at
        await session.flush()
        return
    await assignment.assign(session, mediation, case, mediator, actor=SYSTEM_ACTOR, at=at)


async def accept_invitation(
    session: AsyncSession, personal_data: PersonalData, principal: Principal, code: str
) -> schemas.InvitationOut:
    """The caller accepts mediation as the invited respondent; when they were the last to,
    a mediator is assigned in the same transaction."""
    invited, before = await _answer(session, personal_data, principal, code, Consent.accepted)
    if not before:
        at = now()
        await _record_consent(session, invited, principal, Consent.accepted, None, at)
        parties = await _parties(session, invited.mediation.case_id)
        if all(p.consent == Consent.accepted for p in parties if p.role == PartyRole.respondent):
            await _find_mediator(session, invited.mediation, invited.case, at)
    return await _invitation_view(session, invited, principal.user_id)


async def end_not_mediated(
    session: AsyncSession, mediation: Mediation, case: Case, *, reason: str, at: datetime
) -> None:
    """No mediation after all (a decline, or no answer in time): the case is rejected with
    `reason` and the parties are shown other routes."""
    await workflow.apply(
        session,
        case,
        Action.reject,
        SYSTEM_ACTOR,
        data={"reason": reason},
        changes={"rejected_reason": reason},
    )
    mediation.state = MediationState.not_mediated
    mediation.ended_at = at
    mediation.updated_at = at
    mediation.version += 1
    await session.flush()


async def decline_invitation(
    session: AsyncSession,
    personal_data: PersonalData,
    principal: Principal,
    code: str,
    reason: str | None,
) -> schemas.InvitationOut:
    """The caller declines mediation as the invited respondent: it ends, not mediated."""
    invited, before = await _answer(session, personal_data, principal, code, Consent.declined)
    if not before:
        at = now()
        await _record_consent(session, invited, principal, Consent.declined, reason, at)
        await end_not_mediated(session, invited.mediation, invited.case, reason="declined", at=at)
    return await _invitation_view(session, invited, principal.user_id)


async def reissue_invitation(
    session: AsyncSession,
    personal_data: PersonalData,
    principal: Principal,
    case_id: uuid.UUID,
    party_id: uuid.UUID,
) -> schemas.InvitationIssued:
    """A new code for a respondent who has not answered yet; the old one stops working."""
    seen = await visible_mediation(session, principal, case_id, for_update=True)
    if seen.viewer is not Viewer.applicant:
        raise ApplicantOnly()
    mediation, case = seen.mediation, seen.case
    party = (
        await session.execute(
            select(MediationParty)
            .where(
                col(MediationParty.id) == party_id,
                col(MediationParty.case_id) == case_id,
                col(MediationParty.role) == PartyRole.respondent.value,
            )
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    if party is None:
        raise PartyNotFound()
    if party.user_id is not None or party.consent in (Consent.accepted, Consent.declined):
        raise InvitationAnswered()
    at = now()
    if (
        mediation.state != MediationState.awaiting_consent
        or at > mediation.consent_due_at
        or party.consent != Consent.pending
    ):
        raise ConsentClosed()
    code = new_invitation_code()
    party.invitation_hash = personal_data.lookup_hash(code)
    party.invited_at = at
    mediation.updated_at = at
    mediation.version += 1
    await session.flush()
    await workflow.apply(
        session,
        case,
        Action.comment,
        Actor(principal.user_id, workflow.RESIDENT),
        data={"step": "invitation_reissued"},
    )
    category = await session.get(Category, case.category_id)
    assert category is not None  # a foreign key
    assert seen.party is not None  # the applicant's own row
    return _issued(
        party,
        code,
        applicant_name=seen.party.name,
        category=category,
        number=case.number,
        due=mediation.consent_due_at,
    )


# --- withdrawal ----------------------------------------------------------------------------


async def withdraw(
    session: AsyncSession,
    store: ObjectStore,
    principal: Principal,
    case_id: uuid.UUID,
    reason: str | None,
) -> schemas.MediationOut:
    """The applicant withdraws an open mediation; a withdrawn one is answered as it is."""
    seen = await visible_mediation(session, principal, case_id, for_update=True)
    if seen.viewer is not Viewer.applicant:
        raise ApplicantOnly()
    mediation, case = seen.mediation, seen.case
    state = MediationState(mediation.state)
    if state is MediationState.withdrawn:
        return await mediation_view(session, store, seen, viewer=principal)
    if state not in OPEN_MEDIATION_STATES:
        raise MediationEnded(state)
    at = now()
    actor = Actor(principal.user_id, workflow.RESIDENT)
    if workflow.allowed(Action.reject, CaseState(case.state)):
        await workflow.apply(
            session,
            case,
            Action.reject,
            actor,
            note=reason,
            data={"reason": "withdrawn"},
            changes={"rejected_reason": "withdrawn"},
        )
    else:
        # Sessions have begun (the case is in progress), where rejecting is not a step:
        # the case is resolved, with the outcome saying it was withdrawn.
        await workflow.apply(
            session,
            case,
            Action.resolve,
            actor,
            note=reason,
            data={"outcome": "withdrawn"},
            changes={"resolved_at": at},
        )
    mediation.state = MediationState.withdrawn
    mediation.ended_at = at
    mediation.updated_at = at
    mediation.version += 1
    await session.flush()
    return await mediation_view(session, store, seen, viewer=principal)
