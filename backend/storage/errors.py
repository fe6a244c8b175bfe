"""Errors of uploads, each with its status, stable code and zh-CN/en message.

Errors raised while claiming uploads for a case name the upload (`upload_id`), so the
mini-program can point at the one photo that needs to be taken or sent again.
"""

from __future__ import annotations

import uuid
from typing import Any

from backend.auth.principal import AUTH_ERRORS
from backend.core.errors import ShanzhiError, Unavailable
from backend.core.ratelimit import RateLimited


class UploadTypeNotAllowed(ShanzhiError):
    status = 422
    code = "upload.type_not_allowed"
    message = {
        "zh-CN": "这里不能上传该类型的文件（{content_type}），可以上传：{allowed}",
        "en": "Files of type {content_type} cannot be uploaded here; allowed: {allowed}",
    }

    def __init__(self, *, content_type: str, allowed: list[str]) -> None:
        self.allowed = allowed
        super().__init__(content_type=content_type, allowed=", ".join(allowed))

    def extra(self) -> dict[str, Any]:
        return {"allowed_types": self.allowed}


class UploadTooLarge(ShanzhiError):
    status = 422
    code = "upload.too_large"
    message = {
        "zh-CN": "文件太大了，这里最大可以上传 {max_mb} MB，请压缩后再试",
        "en": "The file is too large; at most {max_mb} MB can be uploaded here",
    }

    def __init__(self, *, max_size: int) -> None:
        self.max_size = max_size
        super().__init__(max_mb=max_size // (1024 * 1024))

    def extra(self) -> dict[str, Any]:
        return {"max_size": self.max_size}


class _UploadProblem(ShanzhiError):
    """A problem with one named upload; the body says which one."""

    def __init__(self, upload_id: uuid.UUID, **params: Any) -> None:
        self.upload_id = upload_id
        super().__init__(**params)

    def extra(self) -> dict[str, Any]:
        return {"upload_id": str(self.upload_id)}


class UploadNotFound(_UploadProblem):
    # Also the answer for someone else's upload, so upload ids reveal nothing.
    status = 404
    code = "upload.not_found"
    message = {
        "zh-CN": "找不到该上传的文件，请重新上传",
        "en": "This upload was not found; please upload the file again",
    }


class UploadWrongPurpose(_UploadProblem):
    status = 422
    code = "upload.wrong_purpose"
    message = {
        "zh-CN": "该文件不是为这里上传的，请重新上传",
        "en": "This file was uploaded for a different purpose; please upload it again here",
    }


class UploadAlreadyAttached(_UploadProblem):
    status = 409
    code = "upload.already_attached"
    message = {
        "zh-CN": "该文件已经用过了，请重新上传",
        "en": "This file has already been used; please upload it again",
    }


class UploadExpired(_UploadProblem):
    status = 410
    code = "upload.expired"
    message = {
        "zh-CN": "该文件上传太久没有使用，已被清理，请重新上传",
        "en": "This upload was not used in time and has been removed; please upload it again",
    }


class UploadNotUploaded(_UploadProblem):
    status = 409
    code = "upload.not_uploaded"
    message = {
        "zh-CN": "照片还没有上传完成，请稍后再试",
        "en": "The photo has not finished uploading; try again",
    }


class UploadSizeMismatch(_UploadProblem):
    status = 422
    code = "upload.size_mismatch"
    message = {
        "zh-CN": "上传的文件不完整，请重新上传",
        "en": "The uploaded file is incomplete or not the one announced; please upload it again",
    }


class UploadTypeMismatch(_UploadProblem):
    status = 422
    code = "upload.type_mismatch"
    message = {
        "zh-CN": "上传的文件不是有效的 {content_type} 文件，请重新选择照片或视频",
        "en": "The uploaded file is not a valid {content_type} file; please choose it again",
    }


class UploadDuplicate(_UploadProblem):
    status = 422
    code = "upload.duplicate"
    message = {
        "zh-CN": "同一个文件不能添加两次",
        "en": "The same file cannot be added twice",
    }


class StorageUnavailable(Unavailable):
    code = "upload.storage_unavailable"
    message = {
        "zh-CN": "照片存储暂时无法访问，请稍后再试",
        "en": "Photo storage is unavailable at the moment; try again later",
    }
    retry_after = 5


# What `service.claim_uploads` may raise: routes that call it list these in `responses=`.
CLAIM_ERRORS: tuple[type[ShanzhiError], ...] = (
    UploadNotFound,
    UploadWrongPurpose,
    UploadAlreadyAttached,
    UploadExpired,
    UploadNotUploaded,
    UploadSizeMismatch,
    UploadTypeMismatch,
    UploadDuplicate,
    StorageUnavailable,
)


# --- what each route answers (its `responses=`) ----------------------------------------

CREATE_UPLOAD_ERRORS = (*AUTH_ERRORS, RateLimited, UploadTypeNotAllowed, UploadTooLarge)
GET_UPLOAD_ERRORS = (*AUTH_ERRORS, UploadNotFound, StorageUnavailable)
