"""Request and response bodies of the uploads API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from backend.core.text import Verbatim
from backend.storage.models import UploadPurpose

_ID_EXAMPLE = "0193a6b2-7c4e-7d11-9a3b-5f2e8c1d0a4b"
_EXPIRES_EXAMPLE = "2026-11-22T10:15:00+08:00"
_KEY_EXAMPLE = "u/0193a6a0-1b2c-7d3e-8f40-5a6b7c8d9e0f/9f86d081884c7d659a2feaa0c55ad015"


class UploadCreate(BaseModel):
    """The file the phone is about to upload: what it is for, its type and its size."""

    purpose: UploadPurpose = Field(
        description="`case_photo`, `resolution_photo`, `evidence`: JPEG, PNG, WebP or HEIC "
        "up to 10 MB; `case_video`: MP4 up to 50 MB."
    )
    content_type: Verbatim = Field(
        min_length=1,
        max_length=100,
        description="MIME type of the file, e.g. `image/jpeg`; the upload must use it too.",
    )
    size: int = Field(
        ge=1,
        description="Exact size of the file in bytes (`size` from wx.chooseMedia). A "
        "larger file is refused by storage, a different one when a case names the upload.",
    )

    @field_validator("content_type")
    @classmethod
    def _normalize(cls, value: str) -> str:
        # MIME types are case-insensitive.
        return value.strip().lower()

    model_config = ConfigDict(
        json_schema_extra={
            "example": {"purpose": "case_photo", "content_type": "image/jpeg", "size": 482133}
        }
    )


class UploadTicket(BaseModel):
    """Where and how to post the file: `wx.uploadFile({url, formData: fields, name: "file"})`.

    Storage answers 204 on success. Then name `id` in the report or event it belongs to.
    """

    id: uuid.UUID = Field(description="The upload's id, named later in a report.")
    url: str = Field(description="Where to POST the multipart form.")
    fields: dict[str, str] = Field(
        description="Form fields to send unchanged (`formData`); the file goes in `file`."
    )
    key: str = Field(description="The object key the file is stored under.")
    expires_at: datetime = Field(description="The form must be posted before this time.")
    max_size: int = Field(description="Largest file accepted: the declared size, in bytes.")

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": _ID_EXAMPLE,
                "url": "https://oss.example.gov.cn/shanzhi",
                "fields": {
                    "key": _KEY_EXAMPLE,
                    "Content-Type": "image/jpeg",
                    "x-amz-algorithm": "AWS4-HMAC-SHA256",
                    "x-amz-credential": "SHANZHIKEY/20261122/us-east-1/s3/aws4_request",
                    "x-amz-date": "20261122T020000Z",
                    "policy": "eyJleHBpcmF0aW9uIjogIjIwMjYtMTEtMjJUMDI6MTU6MDAuMDAwWiIsIC4uLn0=",
                    "x-amz-signature": "5d41402abc4b2a76b9719d911017c592ae2f5b1c3e4d5f6a7b8c9d0e",
                },
                "key": _KEY_EXAMPLE,
                "expires_at": _EXPIRES_EXAMPLE,
                "max_size": 482133,
            }
        }
    )


class UploadOut(BaseModel):
    """One of the caller's uploads and where it stands."""

    id: uuid.UUID
    purpose: UploadPurpose
    content_type: str
    size: int = Field(description="The declared size in bytes.")
    state: Literal["pending", "uploaded", "attached", "deleted"] = Field(
        description="`pending`: not posted yet; `uploaded`: the file is in storage, not yet "
        "named by a case; `attached`: part of a case; `deleted`: never used and removed."
    )
    expires_at: datetime = Field(description="The upload form works until this time.")

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": _ID_EXAMPLE,
                "purpose": "case_photo",
                "content_type": "image/jpeg",
                "size": 482133,
                "state": "uploaded",
                "expires_at": _EXPIRES_EXAMPLE,
            }
        }
    )
