"""What can go wrong in the proceedings of a mediation (sessions, minutes, the agreement and
the outcome), in words a party or a mediator understands."""

from __future__ import annotations

from typing import Any

from backend.auth.principal import AUTH_ERRORS
from backend.cases.errors import CaseChangedMeanwhile, CaseTransitionNotAllowed
from backend.core.errors import NotFound, ShanzhiError
from backend.core.pagination import CursorInvalid
from backend.mediation.errors import InState, MediationEnded, MediationNotFound

# --- who may act ---------------------------------------------------------------------------


class MediatorOnly(ShanzhiError):
    status = 403
    code = "mediation.mediator_only"
    message = {
        "zh-CN": "只有负责本案的调解员可以安排调解、记录调解情况和提出调解结果",
        "en": "Only the mediator of this case can schedule sessions, record them and "
        "decide the outcome",
    }


class PartyOnly(ShanzhiError):
    status = 403
    code = "mediation.party_only"
    message = {
        "zh-CN": "调解协议只能由当事人本人在小程序中确认",
        "en": "Only the parties themselves can confirm the agreement, in the app",
    }


# --- the mediation's state -----------------------------------------------------------------


class MediationNotUnderway(InState):
    status = 409
    code = "mediation.not_underway"
    message = {
        "zh-CN": "该调解尚未开始（{state_zh}），暂不能进行此操作",
        "en": "This mediation has not started yet ({state_en}); this step is not possible yet",
    }


# --- sessions ------------------------------------------------------------------------------


class SessionNotFound(NotFound):
    code = "mediation.session_not_found"
    message = {"zh-CN": "找不到该调解会议", "en": "Mediation session not found"}


class SessionTimeInvalid(ShanzhiError):
    status = 422
    code = "mediation.session_time_invalid"
    message = {
        "zh-CN": "调解时间须晚于现在，且在一年以内",
        "en": "The session must start in the future, within a year",
    }


class SessionPlaceRequired(ShanzhiError):
    status = 422
    code = "mediation.session_place_required"
    message = {
        "zh-CN": "现场调解请填写调解地点",
        "en": "Give the place of an in-person session",
    }


class SessionChangeInvalid(ShanzhiError):
    status = 422
    code = "mediation.session_change_invalid"
    message = {
        "zh-CN": "取消调解会议时不能同时修改时间或地点",
        "en": "Cancel a session or change it, not both at once",
    }


class SessionClash(ShanzhiError):
    status = 409
    code = "mediation.session_clash"
    message = {
        "zh-CN": "该时间已安排了另一场调解会议，请修改那一场，或另选时间",
        "en": "Another session is already scheduled at that time; change that one or pick "
        "another time",
    }

    def __init__(self, *, session_id: str) -> None:
        super().__init__(session_id=session_id)

    def extra(self) -> dict[str, Any]:
        return {"session_id": self.params["session_id"]}


class SessionNotScheduled(ShanzhiError):
    status = 409
    code = "mediation.session_not_scheduled"
    message = {
        "zh-CN": "该调解会议已{state_zh}，不能再修改",
        "en": "This session is already {state}; it cannot be changed",
    }

    def __init__(self, *, state: str) -> None:
        super().__init__(state=state, state_zh={"held": "举行", "cancelled": "取消"}[state])

    def extra(self) -> dict[str, Any]:
        return {"state": self.params["state"]}


class SessionNotStarted(ShanzhiError):
    status = 409
    code = "mediation.session_not_started"
    message = {
        "zh-CN": "调解会议尚未开始，开始后才能记录到场情况和调解笔录",
        "en": "The session has not started yet; record attendance and minutes after it",
    }


class SessionAlreadyRecorded(ShanzhiError):
    status = 409
    code = "mediation.session_already_recorded"
    message = {
        "zh-CN": "该调解会议已记录过，笔录不能更改",
        "en": "This session is already recorded; its minutes cannot be changed",
    }


class AttendeeNotParty(ShanzhiError):
    status = 422
    code = "mediation.attendee_not_party"
    message = {
        "zh-CN": "到场人员须为本案的当事人",
        "en": "Attendees must be parties of this mediation",
    }


# --- the agreement -------------------------------------------------------------------------


class NoAgreementProposed(ShanzhiError):
    status = 409
    code = "mediation.no_agreement_proposed"
    message = {
        "zh-CN": "调解员尚未提出调解协议，暂无可确认的内容",
        "en": "The mediator has not proposed an agreement yet; there is nothing to confirm",
    }


class AgreementChanged(ShanzhiError):
    status = 409
    code = "mediation.agreement_changed"
    message = {
        "zh-CN": "调解协议已修改（现为第 {current} 版），请阅读最新内容后再确认",
        "en": "The agreement has changed (now version {current}); read the new text and "
        "confirm that",
    }

    def __init__(self, *, current: int) -> None:
        super().__init__(current=current)

    def extra(self) -> dict[str, Any]:
        return {"current_version": self.params["current"]}


CASE_ERRORS = (CaseTransitionNotAllowed, CaseChangedMeanwhile)


READ_ERRORS = (*AUTH_ERRORS, MediationNotFound)
MEDIATOR_ERRORS = (*READ_ERRORS, MediatorOnly, MediationEnded, MediationNotUnderway)


# --- what each route answers (its `responses=`) ----------------------------------------

LIST_MEDIATION_SESSIONS_ERRORS = (*READ_ERRORS, CursorInvalid)
UPDATE_MEDIATION_SESSION_ERRORS = (
    *MEDIATOR_ERRORS,
    SessionNotFound,
    SessionChangeInvalid,
    SessionNotScheduled,
    SessionPlaceRequired,
    SessionTimeInvalid,
    SessionClash,
    *CASE_ERRORS,
)
RECORD_MEDIATION_SESSION_ERRORS = (
    *READ_ERRORS,
    MediatorOnly,
    SessionNotFound,
    SessionNotScheduled,
    AttendeeNotParty,
    SessionNotStarted,
    SessionAlreadyRecorded,
    *CASE_ERRORS,
)
GET_MEDIATION_OUTCOME_ERRORS = (*READ_ERRORS,)
PROPOSE_MEDIATION_AGREEMENT_ERRORS = (*MEDIATOR_ERRORS, *CASE_ERRORS)
CONFIRM_MEDIATION_AGREEMENT_ERRORS = (
    *READ_ERRORS,
    PartyOnly,
    MediationEnded,
    NoAgreementProposed,
    AgreementChanged,
    *CASE_ERRORS,
)
END_MEDIATION_WITHOUT_AGREEMENT_ERRORS = (*MEDIATOR_ERRORS, *CASE_ERRORS)
