"""The volunteers domain's periodic jobs, for `shanzhi worker`."""

from __future__ import annotations

from backend.core.config import Settings
from backend.core.jobs import Job
from volunteers.activities import tasks as activities_tasks


def jobs(settings: Settings) -> list[Job]:
    return activities_tasks.jobs(settings)
