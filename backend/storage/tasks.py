"""The storage jobs: uploads never attached are removed, and so are the files phones posted
for uploads since attached (only the server's checked copy is kept)."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.config import Settings
from backend.core.jobs import Job, until_done
from backend.storage import service
from backend.storage.service import ObjectStore

log = logging.getLogger("shanzhi.worker")

# --- uploads nobody used -----------------------------------------------------------------


async def purge_uploads(session: AsyncSession, store: ObjectStore) -> int:
    """Remove unattached uploads, one committed batch at a time; how many were."""
    return await until_done(session, lambda: service.purge_unattached(session, store))


async def remove_staging(session: AsyncSession, store: ObjectStore) -> int:
    """Remove posted files of attached uploads, a committed batch at a time; how many."""
    return await until_done(session, lambda: service.remove_staging_copies(session, store))


def jobs(settings: Settings) -> list[Job]:
    if not settings.s3_endpoint:
        log.info("no S3 endpoint configured: unattached uploads are not purged")
        return []
    store = ObjectStore(settings)
    return [
        Job("purge_uploads", "purged", lambda session: purge_uploads(session, store)),
        Job("remove_staging", "staging removed", lambda session: remove_staging(session, store)),
    ]
