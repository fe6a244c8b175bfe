"""The points domain's periodic jobs, for `shanzhi worker`."""

from __future__ import annotations

from backend.core.config import Settings
from backend.core.jobs import Job
from points.ledger import tasks as ledger_tasks
from points.redemption import tasks as redemption_tasks


def jobs(settings: Settings) -> list[Job]:
    return [*redemption_tasks.jobs(settings), *ledger_tasks.jobs(settings)]
