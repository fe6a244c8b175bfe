"""What can go wrong in a mediation, in words a party or a mediator understands."""

from __future__ import annotations

from typing import Any

from backend.core.errors import NotFound, ShanzhiError
from backend.mediation.models import MediationState
from backend.mediation.requests.errors import STATE_EN, STATE_ZH


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
