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

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.principal import Principal
from backend.cases import workflow
from backend.cases.categories import service as categories_service
from backend.cases.errors import IdempotencyConflict, OutsideServiceArea
from backend.cases.models import Case, CaseAttachment, CaseKind, CaseState
from backend.cases.workflow import Action, Actor
from backend.core.clock import now
from backend.core.i18n import Language
from backend.core.idempotency import check_idempotency_key, earlier_request, request_hash
from backend.core.security import PersonalData, mask_phone
from backend.mediation.auth import Seen, Viewer, visible_mediation
from backend.mediation.errors import MediationEnded
from backend.mediation.models import (
    OPEN_MEDIATION_STATES,
    Consent,
    Mediation,
    MediationParty,
    MediationState,
    PartyRole,
    Studio,
)
from backend.mediation.requests import schemas
from backend.mediation.requests.errors import (
    ApplicantOnly,
    DisputeTypeUnavailable,
    PhoneRequired,
    PreferredStudioInvalid,
    RespondentDuplicate,
    RespondentIsYou,
)
from backend.mediation.requests.invitations import issued, new_invitation_code
from backend.mediation.requests.queries import mediation_view, view_fields
from backend.regions.coords import to_wgs84
from backend.regions.service import GridMap
from backend.storage import service as storage_service
from backend.storage.models import UploadPurpose
from backend.storage.service import ObjectStore

EVIDENCE_PURPOSES = (UploadPurpose.case_photo, UploadPurpose.case_video)


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
    earlier = await earlier_request(
        session, Case.submitted_by, principal.user_id, key, digest, IdempotencyConflict
    )
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
    category = await categories_service.active_category(
        session, CaseKind.mediation, body.dispute_type.value
    )
    if category is None:
        raise DisputeTypeUnavailable()
    if body.preferred_studio_id is not None:
        studio = await session.get(Studio, body.preferred_studio_id)
        if studio is None or not studio.active:
            raise PreferredStudioInvalid()

    # S3 is asked before anything is written, with no database connection held.
    prepared = await storage_service.prepare_claim(
        session, store, user.id, body.upload_ids, EVIDENCE_PURPOSES
    )
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
        winner = await earlier_request(
            session, Case.submitted_by, user.id, key, digest, IdempotencyConflict
        )
        assert winner is not None, "ON CONFLICT found the key, so its case exists"
        return await _replay(session, store, principal, winner, digest, language)
    case, event = opened
    if body.upload_ids:
        uploads = await storage_service.claim_uploads(session, prepared)
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
    fields = await view_fields(session, store, seen, user.id)
    invitations = [
        issued(
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


async def _replay(
    session: AsyncSession,
    store: ObjectStore,
    principal: Principal,
    earlier: Case,
    digest: str,
    language: Language,
) -> Requested:
    """The mediation an earlier request with this key opened, if this request is the same."""
    if earlier.kind != CaseKind.mediation:
        raise IdempotencyConflict()  # the key opened a report or complaint
    seen = await visible_mediation(session, principal, earlier.id)
    fields = await view_fields(session, store, seen, principal.user_id)
    return Requested(
        schemas.MediationCreated(**fields, invitations=[], hint=REPLAY_HINT[language]),
        replayed=True,
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
