"""Periodic jobs of mediation: consent that never came, and mediations past their time limit.

Run by `shanzhi worker` (backend/worker.py, through `jobs(settings)`). Each job takes its
mediations in batches with `FOR UPDATE SKIP LOCKED` and commits each batch, so any number of
workers can run side by side, and a mediation a request holds right now (a respondent
answering, the applicant withdrawing) is skipped and looked at again next run."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.cases import workflow
from backend.cases.models import Case, CaseState
from backend.core.clock import now
from backend.core.config import Settings
from backend.core.jobs import Job, alone
from backend.mediation.models import (
    OPEN_MEDIATION_STATES,
    Consent,
    Mediation,
    MediationParty,
    MediationState,
    PartyRole,
)
from backend.mediation.requests.invitations import SYSTEM_ACTOR, end_not_mediated

log = logging.getLogger("shanzhi.worker")

BATCH_SIZE = 100
CONSENT_EXPIRED = "consent_expired"
TIME_LIMIT_PASSED = "mediation_overdue"


async def _claim_batch(
    session: AsyncSession, condition: list[ColumnElement[bool]], limit: int, skip: set[uuid.UUID]
) -> list[tuple[Mediation, Case]]:
    query = (
        select(Mediation, Case)
        .join(Case, col(Case.id) == col(Mediation.case_id))
        .where(*condition)
        .order_by(col(Mediation.case_id))
        .limit(limit)
        .with_for_update(skip_locked=True, of=Mediation)
        .execution_options(populate_existing=True)
    )
    if skip:
        query = query.where(col(Mediation.case_id).not_in(skip))
    return [(mediation, case) for mediation, case in (await session.execute(query)).all()]


async def expire_consents(
    session: AsyncSession, at: datetime, *, batch_size: int = BATCH_SIZE
) -> int:
    """End mediations whose respondents did not all answer by the consent deadline; how many.

    Respondents still pending become `expired`; the mediation ends `not_mediated` (the case
    is rejected by the system with reason `consent_expired`). Commits after each batch.
    """
    total = 0
    skip: set[uuid.UUID] = set()
    condition = [
        col(Mediation.state) == MediationState.awaiting_consent.value,
        col(Mediation.consent_due_at) < at,
    ]
    while True:
        batch = await _claim_batch(session, condition, batch_size, skip)
        for mediation, case in batch:
            skip.add(mediation.case_id)
            async with alone(
                session, "expire the consent of mediation %s", mediation.case_id
            ) as item:
                await session.execute(
                    update(MediationParty)
                    .where(
                        col(MediationParty.case_id) == mediation.case_id,
                        col(MediationParty.role) == PartyRole.respondent.value,
                        col(MediationParty.consent) == Consent.pending.value,
                    )
                    .values(consent=Consent.expired.value, consent_at=at)
                    .execution_options(synchronize_session=False)
                )
                await end_not_mediated(session, mediation, case, reason=CONSENT_EXPIRED, at=at)
            if item.failed:
                continue
            total += 1
        await session.commit()
        if len(batch) < batch_size:
            return total


async def escalate_overdue(
    session: AsyncSession, at: datetime, *, batch_size: int = BATCH_SIZE
) -> int:
    """Escalate open mediations past their time limit, once each; how many were.

    The mediation's `escalated_at` is set and the case gets a system `escalate` event
    (reason `mediation_overdue`, `from`/`to` and the deadline), its queue moving to the
    region above, where the supervising admins see it. Commits after each batch.
    """
    total = 0
    skip: set[uuid.UUID] = set()
    condition = [
        col(Mediation.state).in_([state.value for state in OPEN_MEDIATION_STATES]),
        col(Mediation.due_at) < at,
        col(Mediation.escalated_at).is_(None),
    ]
    while True:
        batch = await _claim_batch(session, condition, batch_size, skip)
        for mediation, case in batch:
            skip.add(mediation.case_id)
            target = workflow.parent_of(case.queue_path)
            async with alone(session, "escalate mediation %s", mediation.case_id) as item:
                if target is not None and workflow.allowed(
                    workflow.Action.escalate, CaseState(case.state)
                ):
                    await workflow.apply(
                        session,
                        case,
                        workflow.Action.escalate,
                        SYSTEM_ACTOR,
                        data={
                            "reason": TIME_LIMIT_PASSED,
                            "from": case.queue_path,
                            "to": target,
                            "deadline": mediation.due_at.isoformat(),
                        },
                        changes={
                            "queue_path": target,
                            "escalation_level": case.escalation_level + 1,
                        },
                    )
                mediation.escalated_at = at
                mediation.updated_at = at
                mediation.version += 1
                await session.flush()
            if item.failed:
                continue
            total += 1
        await session.commit()
        if len(batch) < batch_size:
            return total


async def _run(session: AsyncSession) -> int:
    at = now()
    expired = await expire_consents(session, at)
    escalated = await escalate_overdue(session, at)
    log.info(
        "mediation: %d not mediated (no consent in time), %d escalated (time limit passed)",
        expired,
        escalated,
        extra={"mediation_consent_expired": expired, "mediation_escalated": escalated},
    )
    return expired + escalated


def jobs(settings: Settings) -> list[Job]:
    return [Job("mediation_deadlines", "mediations_ended_or_escalated", _run)]
