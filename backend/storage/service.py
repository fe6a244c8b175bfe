"""Object storage through the `minio` client (any S3 server: MinIO, SeaweedFS, ...), and
uploads: the phone posts a file straight to S3 under a presigned POST policy, and a case
later claims it once its size, type and first bytes check out.

The client is synchronous, so every call that talks to the server runs in a thread;
presigning is local arithmetic because the region is given explicitly.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Literal
from urllib.parse import urlsplit

import urllib3
from minio import Minio
from minio.datatypes import PostPolicy
from minio.deleteobjects import DeleteObject
from minio.error import MinioException, S3Error
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.core.clock import now
from backend.core.config import Settings
from backend.core.errors import ShanzhiError
from backend.storage.errors import (
    StorageUnavailable,
    UploadAlreadyAttached,
    UploadDuplicate,
    UploadExpired,
    UploadNotFound,
    UploadNotUploaded,
    UploadSizeMismatch,
    UploadTooLarge,
    UploadTypeMismatch,
    UploadTypeNotAllowed,
    UploadWrongPurpose,
)
from backend.storage.models import Upload, UploadPurpose, UploadState

log = logging.getLogger("shanzhi.storage")


class ObjectStore:
    def __init__(self, settings: Settings) -> None:
        if not settings.s3_endpoint:
            raise ValueError("SHANZHI_S3_ENDPOINT is not set")
        secret = settings.s3_secret_key.get_secret_value() if settings.s3_secret_key else None
        self.bucket = settings.s3_bucket
        self.client = Minio(
            settings.s3_endpoint,
            access_key=settings.s3_access_key,
            secret_key=secret,
            secure=settings.s3_secure,
            region=settings.s3_region,
        )
        # Phones reach storage at the public endpoint, and the host is part of the signature.
        public = settings.s3_public_endpoint or (
            f"{'https' if settings.s3_secure else 'http'}://{settings.s3_endpoint}"
        )
        parts = urlsplit(public if "://" in public else f"http://{public}")
        # Where phones post their files (`<public_url>/<bucket>`, path-style).
        self.public_url = f"{parts.scheme}://{parts.netloc}"
        self.public_client = Minio(
            parts.netloc,
            access_key=settings.s3_access_key,
            secret_key=secret,
            secure=parts.scheme == "https",
            region=settings.s3_region,
        )
        # Keys carry a per-user prefix that names nobody: an anonymous reporter's photo URL
        # must not reveal who took it.
        self._prefix_key = hmac.new(
            settings.data_key.get_secret_value().encode(), b"shanzhi/upload-prefix/v1", "sha256"
        ).digest()

    def owner_prefix(self, owner_id: uuid.UUID) -> str:
        return hmac.new(self._prefix_key, owner_id.bytes, "sha256").hexdigest()[:32]

    async def ensure_bucket(self) -> None:
        def _ensure() -> bool:
            if self.client.bucket_exists(self.bucket):
                return False
            try:
                self.client.make_bucket(self.bucket)
            except S3Error as error:
                # Another process created it between the check and the call.
                if error.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise
            return True

        if await asyncio.to_thread(_ensure):
            log.info("created bucket %s", self.bucket)

    async def ping(self) -> None:
        """Raise unless the server answers and the bucket exists."""
        exists = await asyncio.to_thread(self.client.bucket_exists, self.bucket)
        if not exists:
            raise RuntimeError(f"bucket {self.bucket} does not exist")


# --- what may be uploaded --------------------------------------------------------------

MB = 1024 * 1024
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp", "image/heic")


@dataclass(frozen=True)
class PurposeRule:
    content_types: tuple[str, ...]
    max_size: int  # bytes


# The one place the accepted types and sizes are defined.
UPLOAD_RULES: Mapping[UploadPurpose, PurposeRule] = MappingProxyType(
    {
        UploadPurpose.case_photo: PurposeRule(IMAGE_TYPES, 10 * MB),
        UploadPurpose.resolution_photo: PurposeRule(IMAGE_TYPES, 10 * MB),
        UploadPurpose.evidence: PurposeRule(IMAGE_TYPES, 10 * MB),
        UploadPurpose.reward_photo: PurposeRule(IMAGE_TYPES, 10 * MB),
        UploadPurpose.case_video: PurposeRule(("video/mp4",), 50 * MB),
    }
)

# ISO-BMFF major brands (bytes 8..12 of the `ftyp` box) accepted for each type.
_HEIC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})
_MP4_BRANDS = frozenset(
    {
        b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42",
        b"avc1", b"M4V ", b"dash", b"mmp4", b"MSNV", b"f4v ",
    }
)  # fmt: skip
PROBE_BYTES = 16  # enough for every signature above


def content_matches(content_type: str, head: bytes) -> bool:
    """Do the file's first bytes look like `content_type` (its magic number)?"""
    if content_type == "image/jpeg":
        return head.startswith(b"\xff\xd8\xff")
    if content_type == "image/png":
        return head.startswith(b"\x89PNG\r\n\x1a\n")
    if content_type == "image/webp":
        return head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    if content_type in ("image/heic", "video/mp4"):
        brands = _HEIC_BRANDS if content_type == "image/heic" else _MP4_BRANDS
        return head[4:8] == b"ftyp" and head[8:12] in brands
    return False


def check_declared(purpose: UploadPurpose, content_type: str, size: int) -> PurposeRule:
    """Refuse a type or size the purpose does not take."""
    rule = UPLOAD_RULES[purpose]
    if content_type not in rule.content_types:
        raise UploadTypeNotAllowed(content_type=content_type, allowed=list(rule.content_types))
    if size > rule.max_size:
        raise UploadTooLarge(max_size=rule.max_size)
    return rule


# --- handing out an upload -------------------------------------------------------------


@dataclass(frozen=True)
class UploadOffer:
    """A pending upload and the form the phone posts to S3 with the file as `file`."""

    upload: Upload
    url: str
    fields: dict[str, str]


def object_key(store: ObjectStore, owner_id: uuid.UUID) -> str:
    # The owner's opaque prefix, then 128 random bits: nobody can guess a key.
    return f"u/{store.owner_prefix(owner_id)}/{secrets.token_hex(16)}"


async def create_upload(
    session: AsyncSession,
    store: ObjectStore,
    owner_id: uuid.UUID,
    purpose: UploadPurpose,
    content_type: str,
    size: int,
    *,
    ttl: timedelta,
) -> UploadOffer:
    """Record a pending upload and presign a POST policy bound to its key, type and size.

    S3 itself refuses a different key, another Content-Type, a file larger than declared
    and a post after the expiry; what S3 cannot check (exact size, real content) is checked
    when a case claims the upload.
    """
    check_declared(purpose, content_type, size)
    upload = Upload(
        owner_id=owner_id,
        purpose=purpose,
        object_key=object_key(store, owner_id),
        content_type=content_type,
        declared_size=size,
        expires_at=now() + ttl,
    )
    # S3 judges the policy by its own (wall) clock, as it does the signature date minio
    # puts in; in production that is the same instant as `now()`.
    policy = PostPolicy(store.bucket, datetime.now(UTC) + ttl)
    policy.add_equals_condition("key", upload.object_key)
    policy.add_equals_condition("Content-Type", content_type)
    policy.add_content_length_range_condition(1, size)
    signed = store.public_client.presigned_post_policy(policy)  # local: region is given
    session.add(upload)
    await session.flush()
    return UploadOffer(
        upload=upload,
        url=f"{store.public_url}/{store.bucket}",
        fields={"key": upload.object_key, "Content-Type": content_type, **signed},
    )


# --- looking at stored objects ---------------------------------------------------------

_MISSING = frozenset({"NoSuchKey", "NoSuchObject", "ResourceNotFound"})
# What a failing S3 server or network raises through minio.
_STORAGE_FAILURES = (MinioException, urllib3.exceptions.HTTPError, OSError)


@dataclass(frozen=True)
class StoredObject:
    size: int
    content_type: str
    head: bytes  # the first PROBE_BYTES bytes (fewer if the object is smaller)


def _probe(store: ObjectStore, key: str) -> StoredObject | None:
    """Size, content type and first bytes of an object with one ranged GET (in a thread)."""
    try:
        response = store.client.get_object(store.bucket, key, offset=0, length=PROBE_BYTES)
    except S3Error as error:
        if error.code in _MISSING:
            return None
        if error.code == "InvalidRange":  # an empty object has no first byte
            return StoredObject(size=0, content_type="", head=b"")
        raise
    try:
        head = response.read(PROBE_BYTES)
        headers = response.headers
        content_type = headers.get("Content-Type", "").split(";")[0].strip().lower()
        total = headers.get("Content-Range", "").rpartition("/")[2]
        if response.status == 206 and total.isdigit():
            size = int(total)
        elif response.status == 200 and headers.get("Content-Length", "").isdigit():
            size = int(headers["Content-Length"])  # the server ignored the range
        else:
            size = -1
    finally:
        response.close()
        response.release_conn()
    if size < 0:
        stat = store.client.stat_object(store.bucket, key)
        size = stat.size or 0
    return StoredObject(size=size, content_type=content_type, head=head)


async def _probe_async(store: ObjectStore, key: str) -> StoredObject | None:
    try:
        return await asyncio.to_thread(_probe, store, key)
    except _STORAGE_FAILURES as error:
        log.warning("object storage failed reading %s: %r", key, error)
        raise StorageUnavailable() from error


async def object_exists(store: ObjectStore, key: str) -> bool:
    def _stat() -> bool:
        try:
            store.client.stat_object(store.bucket, key)
        except S3Error as error:
            if error.code in _MISSING:
                return False
            raise
        return True

    try:
        return await asyncio.to_thread(_stat)
    except _STORAGE_FAILURES as error:
        log.warning("object storage failed reading %s: %r", key, error)
        raise StorageUnavailable() from error


# --- the owner's view ------------------------------------------------------------------

UploadStatus = Literal["pending", "uploaded", "attached", "deleted"]


async def get_upload(
    session: AsyncSession, store: ObjectStore, owner_id: uuid.UUID, upload_id: uuid.UUID
) -> tuple[Upload, UploadStatus]:
    """The caller's upload and where it stands; anyone else's is not found."""
    upload = await session.get(Upload, upload_id)
    if upload is None or upload.owner_id != owner_id:
        raise UploadNotFound(upload_id)
    if upload.state == UploadState.pending:
        # Pending until a case claims it; whether the phone has posted the file yet is
        # only known to S3.
        uploaded = await object_exists(store, upload.object_key)
        return upload, "uploaded" if uploaded else "pending"
    return upload, "attached" if upload.state == UploadState.attached else "deleted"


# --- claiming uploads for a case -------------------------------------------------------


def _row_problem(
    upload_id: uuid.UUID, upload: Upload | None, purposes: Collection[UploadPurpose]
) -> ShanzhiError | None:
    if upload is None:
        return UploadNotFound(upload_id)
    if upload.purpose not in purposes:
        return UploadWrongPurpose(upload_id)
    if upload.state == UploadState.attached:
        return UploadAlreadyAttached(upload_id)
    if upload.state == UploadState.deleted:
        return UploadExpired(upload_id)
    return None


def _object_problem(upload: Upload, stored: StoredObject | None) -> ShanzhiError | None:
    if stored is None:
        return UploadNotUploaded(upload.id)
    if stored.size != upload.declared_size:
        return UploadSizeMismatch(upload.id)
    if stored.content_type != upload.content_type or not content_matches(
        upload.content_type, stored.head
    ):
        return UploadTypeMismatch(upload.id, content_type=upload.content_type)
    return None


async def claim_uploads(
    session: AsyncSession,
    store: ObjectStore,
    owner_id: uuid.UUID,
    upload_ids: Sequence[uuid.UUID],
    purposes: Collection[UploadPurpose],
) -> list[Upload]:
    """Verify and mark attached the owner's uploads named by a case, in the given order.

    Each must be the owner's (else `upload.not_found`, the same as a made-up id), of one of
    `purposes`, still pending, present in S3 with exactly the declared size and type, and
    start with that type's magic number. The first problem, in list order, is raised and
    nothing is marked. The rows stay locked until the transaction ends, so a concurrent
    claim of the same upload waits and then finds it attached.
    """
    ids = list(upload_ids)
    seen: set[uuid.UUID] = set()
    for upload_id in ids:
        if upload_id in seen:
            raise UploadDuplicate(upload_id)
        seen.add(upload_id)
    if not ids:
        return []
    # Locked in id order, so two claims of overlapping lists cannot deadlock; refreshed,
    # because a row loaded earlier may have changed while we waited for its lock.
    result = await session.execute(
        select(Upload)
        .where(col(Upload.id).in_(ids), col(Upload.owner_id) == owner_id)
        .order_by(col(Upload.id))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    rows = {upload.id: upload for upload in result.scalars()}

    # Only the uploads before the first row-level problem need looking at in S3.
    checked: list[Upload] = []
    row_problem: ShanzhiError | None = None
    for upload_id in ids:
        upload = rows.get(upload_id)
        row_problem = _row_problem(upload_id, upload, purposes)
        if row_problem is not None:
            break
        assert upload is not None
        checked.append(upload)
    stored = await asyncio.gather(*(_probe_async(store, u.object_key) for u in checked))
    for upload, found in zip(checked, stored, strict=True):
        problem = _object_problem(upload, found)
        if problem is not None:
            raise problem
    if row_problem is not None:
        raise row_problem

    attached_at = now()
    for upload, found in zip(checked, stored, strict=True):
        assert found is not None
        upload.state = UploadState.attached
        upload.attached_at = attached_at
        upload.size = found.size
    await session.flush()
    return checked


# --- reading attached files ------------------------------------------------------------


def view_url(store: ObjectStore, upload: Upload, ttl: timedelta = timedelta(minutes=5)) -> str:
    """A short-lived link to the file for the phone (presigned locally, no network)."""
    return store.public_client.presigned_get_object(store.bucket, upload.object_key, expires=ttl)


# --- cleaning up -------------------------------------------------------------------------


def _remove_objects(store: ObjectStore, keys: list[str]) -> set[str]:
    """Delete `keys` in one multi-object request; answer the keys that could not be."""
    errors = store.client.remove_objects(store.bucket, [DeleteObject(key) for key in keys])
    # The errors come lazily: iterating sends the request. A missing object is no error.
    return {error.name for error in errors if error.name and error.code not in _MISSING}


async def purge_unattached(
    session: AsyncSession,
    store: ObjectStore,
    *,
    older_than: timedelta = timedelta(hours=24),
    batch: int = 500,
) -> int:
    """Remove uploads nobody attached, `older_than` after their policy expired.

    Answers how many were removed. Rows another worker (or a claim) holds are skipped, so
    any number of workers may run this at once. The S3 objects go first: if the commit
    then fails, the next run finds the rows again and deleting a missing object is fine.
    """
    cutoff = now() - older_than
    result = await session.execute(
        select(Upload)
        .where(
            col(Upload.state) == UploadState.pending,
            col(Upload.expires_at) < cutoff,
            # Implied by the line above (a policy expires after it is created); it lets
            # PostgreSQL use the partial index on pending uploads' created_at.
            col(Upload.created_at) < cutoff,
        )
        .order_by(col(Upload.created_at))
        .limit(batch)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    uploads = list(result.scalars())
    if not uploads:
        return 0
    try:
        failed = await asyncio.to_thread(_remove_objects, store, [u.object_key for u in uploads])
    except _STORAGE_FAILURES as error:
        log.warning("object storage failed removing unattached uploads: %r", error)
        raise StorageUnavailable() from error
    if failed:
        log.warning("could not remove %d unattached uploads; will retry", len(failed))
    deleted_at = now()
    removed = 0
    for upload in uploads:
        if upload.object_key in failed:
            continue
        upload.state = UploadState.deleted
        upload.deleted_at = deleted_at
        removed += 1
    await session.flush()
    return removed
