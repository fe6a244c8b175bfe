"""Uploads over HTTP: hand out a presigned POST policy, and show the caller an upload."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path, status

from backend.auth.principal import CurrentPrincipal, RateLimit
from backend.core.database import SessionDep
from backend.core.deps import SettingsDep, StoreDep
from backend.core.errors import problem_responses
from backend.storage import errors, schemas, service

router = APIRouter(prefix="/uploads", tags=["uploads"])


@router.post(
    "",
    operation_id="create_upload",
    summary="Get a presigned form to upload a photo or video",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.UploadTicket,
    responses=problem_responses(*errors.CREATE_UPLOAD_ERRORS),
)
async def create_upload(
    body: schemas.UploadCreate,
    principal: CurrentPrincipal,
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    _: Annotated[None, RateLimit("upload_create", "30/minute")],
) -> schemas.UploadTicket:
    """The file never passes through this API: post `fields` and the file (as `file`) to
    `url` with `wx.uploadFile` before `expires_at`, then name the upload's `id` in a report.

    Photos (`case_photo`, `resolution_photo`, `evidence`) may be JPEG, PNG, WebP or HEIC up
    to 10 MB; videos (`case_video`) MP4 up to 50 MB. Storage refuses another file type and
    a file larger than `size`.
    """
    offer = await service.create_upload(
        session,
        store,
        principal.user_id,
        body.purpose,
        body.content_type,
        body.size,
        ttl=timedelta(minutes=settings.upload_ttl_minutes),
    )
    return schemas.UploadTicket(
        id=offer.upload.id,
        url=offer.url,
        fields=offer.fields,
        key=offer.upload.object_key,
        expires_at=offer.upload.expires_at,
        max_size=offer.upload.declared_size,
    )


@router.get(
    "/{upload_id}",
    operation_id="get_upload",
    summary="Read one of my uploads",
    response_model=schemas.UploadOut,
    responses=problem_responses(*errors.GET_UPLOAD_ERRORS),
)
async def get_upload(
    upload_id: Annotated[uuid.UUID, Path(description="The upload's id.")],
    principal: CurrentPrincipal,
    session: SessionDep,
    store: StoreDep,
) -> schemas.UploadOut:
    """Whether the file has arrived in storage (`uploaded`) or is still `pending`, and
    whether a case uses it. Only its owner can see an upload.
    """
    upload, state = await service.get_upload(session, store, principal.user_id, upload_id)
    return schemas.UploadOut(
        id=upload.id,
        purpose=upload.purpose,
        content_type=upload.content_type,
        size=upload.declared_size,
        state=state,
        expires_at=upload.expires_at,
    )
