"""Invitations and consent: the code a respondent is invited with, accepting and declining."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.auth.principal import Principal
from backend.cases import workflow
from backend.cases.models import Case, Category
from backend.cases.workflow import Action, Actor
from backend.core.clock import LOCAL_TIME, now
from backend.core.security import PersonalData
from backend.mediation.auth import Viewer, visible_mediation
from backend.mediation.models import (
    Consent,
    Mediation,
    MediationParty,
    MediationState,
    PartyRole,
)
from backend.mediation.proceedings.referrals import advice_for
from backend.mediation.requests import schemas
from backend.mediation.requests.errors import (
    AlreadyParty,
    ApplicantOnly,
    ConsentAlreadyGiven,
    ConsentClosed,
    InvitationAnswered,
    InvitationNotFound,
    InvitationUsed,
    OwnInvitation,
    PartyNotFound,
)
from backend.mediation.requests.queries import parties_of, regions_by_id
from backend.mediation.supermarket import assignment
from backend.regions.schemas import RegionBrief

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
    deadline = due.astimezone(LOCAL_TIME).strftime("%Y-%m-%d %H:%M")
    return (
        f"【善治】{applicant_name}邀请您参加“{dispute_name}”调解（案件编号 {number}）。"
        f"请打开微信小程序“善治”，在“调解邀请”中输入邀请码 {code}，"
        f"并于 {deadline} 前答复是否同意调解。调解自愿，您也可以拒绝。"
    )


def issued(
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
    regions = await regions_by_id(session, {community})
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
        parties = await parties_of(session, invited.mediation.case_id)
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
    return issued(
        party,
        code,
        applicant_name=seen.party.name,
        category=category,
        number=case.number,
        due=mediation.consent_due_at,
    )
