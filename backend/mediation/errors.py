"""What can go wrong in a mediation, in words a party or a mediator understands."""

from __future__ import annotations

from typing import Any

from backend.core.errors import NotFound, ShanzhiError
from backend.mediation.models import MediationState

# How a mediation's state reads in a message.
STATE_ZH: dict[MediationState, str] = {
    MediationState.awaiting_consent: "等待对方同意调解",
    MediationState.awaiting_mediator: "等待分配调解员",
    MediationState.assigned: "已分配调解员",
    MediationState.in_session: "调解中",
    MediationState.agreement_pending: "调解协议待确认",
    MediationState.concluded: "已达成调解协议",
    MediationState.no_agreement: "调解未达成协议",
    MediationState.withdrawn: "申请人已撤回",
    MediationState.not_mediated: "未进入调解",
}
STATE_EN: dict[MediationState, str] = {
    MediationState.awaiting_consent: "waiting for the other side's consent",
    MediationState.awaiting_mediator: "waiting for a mediator",
    MediationState.assigned: "assigned to a mediator",
    MediationState.in_session: "in session",
    MediationState.agreement_pending: "waiting for the parties to confirm the agreement",
    MediationState.concluded: "concluded with an agreement",
    MediationState.no_agreement: "ended without agreement",
    MediationState.withdrawn: "withdrawn by the applicant",
    MediationState.not_mediated: "not mediated",
}


class InState(ShanzhiError):
    """A refusal that names the mediation's current state."""

    def __init__(self, state: MediationState) -> None:
        super().__init__(state=state.value, state_zh=STATE_ZH[state], state_en=STATE_EN[state])

    def extra(self) -> dict[str, Any]:
        return {"state": self.params["state"]}


class MediationNotFound(NotFound):
    code = "mediation.not_found"
    message = {"zh-CN": "找不到该调解案件", "en": "Mediation not found"}


class StudioNotFound(NotFound):
    code = "mediation.studio_not_found"
    message = {"zh-CN": "找不到该调解工作室", "en": "Mediation studio not found"}


class MediatorNotFound(NotFound):
    code = "mediation.mediator_not_found"
    message = {"zh-CN": "找不到该调解员", "en": "Mediator not found"}


class MediationEnded(InState):
    status = 409
    code = "mediation.ended"
    message = {
        "zh-CN": "该调解已结束（{state_zh}），不能再进行此操作",
        "en": "This mediation has ended ({state_en}); this step is no longer possible",
    }
