"""What can go wrong in a mediation, in words a party or a mediator understands."""

from __future__ import annotations

from backend.core.errors import NotFound

# --- shared by every part of the domain ----------------------------------------------------


class MediationNotFound(NotFound):
    code = "mediation.not_found"
    message = {"zh-CN": "找不到该调解案件", "en": "Mediation not found"}


class StudioNotFound(NotFound):
    code = "mediation.studio_not_found"
    message = {"zh-CN": "找不到该调解工作室", "en": "Mediation studio not found"}


class MediatorNotFound(NotFound):
    code = "mediation.mediator_not_found"
    message = {"zh-CN": "找不到该调解员", "en": "Mediator not found"}
