"""Object storage through the `minio` client (any S3 server: MinIO, SeaweedFS, ...), and
uploads: the phone posts a file straight to S3 under a presigned POST policy, and a case
later claims it: the server copies it to a key no policy can write and checks the copy's
size, type and first bytes.

The client is synchronous, so every call that talks to the server runs on the store's own
threads, with bounded timeouts and at most one retry; once S3 fails, calls are refused at
once for a few seconds (a circuit breaker), so a dead S3 costs an upload a fast 503, never a
queue. Presigning is local arithmetic because the region is given explicitly.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import secrets
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Literal, TypeVar
from urllib.parse import urlsplit

import urllib3
from minio import Minio
from minio.commonconfig import CopySource
from minio.datatypes import PostPolicy
from minio.deleteobjects import DeleteObject
from minio.error import MinioException, S3Error, ServerError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.core.clock import now
from backend.core.config import Settings
from backend.core.database import release_connection
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

T = TypeVar("T")

_MISSING = frozenset({"NoSuchKey", "NoSuchObject", "ResourceNotFound"})
# S3 not answering (refused, reset, timed out) or answering 5xx: what opens the breaker.
_OUTAGES = (urllib3.exceptions.HTTPError, OSError, ServerError)
# Anything else minio raises is an answer we cannot use: unavailable, but S3 is up.
_FAILURES = (*_OUTAGES, MinioException)


class ObjectStore:
    def __init__(self, settings: Settings) -> None:
        if not settings.s3_endpoint:
            raise ValueError("SHANZHI_S3_ENDPOINT is not set")
        secret = settings.s3_secret_key.get_secret_value() if settings.s3_secret_key else None
        self.bucket = settings.s3_bucket
        # minio's default pool retries a refused connection five times with backoff (about
        # 6 s): here one connect try more, no read retry, and bounded waits.
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(
                connect=settings.s3_connect_timeout_seconds,
                read=settings.s3_read_timeout_seconds,
            ),
            maxsize=settings.s3_threads,
            retries=urllib3.Retry(total=1, connect=1, read=0, status=0, redirect=0),
        )
        self.client = Minio(
            settings.s3_endpoint,
            access_key=settings.s3_access_key,
            secret_key=secret,
            secure=settings.s3_secure,
            region=settings.s3_region,
            http_client=http,
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
        # Threads of its own: a slow S3 cannot starve the loop's default executor.
        self._threads = ThreadPoolExecutor(settings.s3_threads, thread_name_prefix="s3")
        self._breaker_seconds = settings.s3_breaker_seconds
        self._open_until = 0.0  # time.monotonic() before which S3 counts as down

    def owner_prefix(self, owner_id: uuid.UUID) -> str:
        return hmac.new(self._prefix_key, owner_id.bytes, "sha256").hexdigest()[:32]

    async def call(self, what: str, blocking: Callable[[], T]) -> T:
        """Run one blocking S3 exchange on the store's threads. While S3 is known down it is
        refused at once; a failure answers `StorageUnavailable` (and one log line)."""
        wait = self._open_until - time.monotonic()
        if wait > 0:
            raise StorageUnavailable(headers={"Retry-After": str(math.ceil(wait))})
        try:
            return await asyncio.get_running_loop().run_in_executor(self._threads, blocking)
        except _FAILURES as error:
            if isinstance(error, _OUTAGES) and self._breaker_seconds > 0:
                if self._open_until < time.monotonic():  # one line per outage, not per call
                    log.warning(
                        "object storage down (%s while %s): refusing uploads for %.0f s",
                        type(error).__name__,
                        what,
                        self._breaker_seconds,
                    )
                self._open_until = time.monotonic() + self._breaker_seconds
            else:
                log.warning("object storage failed while %s: %r", what, error)
            raise StorageUnavailable(
                headers={"Retry-After": str(math.ceil(self._breaker_seconds) or 1)}
            ) from error

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)

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

        if await self.call("creating the bucket", _ensure):
            log.info("created bucket %s", self.bucket)

    async def ping(self) -> None:
        """Raise unless the server answers and the bucket exists."""
        exists = await self.call(
            "checking the bucket", lambda: self.client.bucket_exists(self.bucket)
        )
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


def _copy_and_probe(store: ObjectStore, staging_key: str, stored_key: str) -> StoredObject | None:
    """Copy what the phone posted to `stored_key` (server-side) and look at the copy; None
    if nothing was posted."""
    try:
        store.client.copy_object(store.bucket, stored_key, CopySource(store.bucket, staging_key))
    except S3Error as error:
        if error.code in _MISSING:
            return None
        raise
    return _probe(store, stored_key)


def _exists(store: ObjectStore, key: str) -> bool:
    try:
        store.client.stat_object(store.bucket, key)
    except S3Error as error:
        if error.code in _MISSING:
            return False
        raise
    return True


def _remove_objects(store: ObjectStore, keys: list[str]) -> set[str]:
    """Delete `keys` in one multi-object request; answer the keys that could not be."""
    errors = store.client.remove_objects(store.bucket, [DeleteObject(key) for key in keys])
    # The errors come lazily: iterating sends the request. A missing object is no error.
    return {error.name for error in errors if error.name and error.code not in _MISSING}


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
        # only known to S3, and asking it holds no database connection.
        key = upload.object_key
        await release_connection(session)
        uploaded = await store.call("looking for an upload", lambda: _exists(store, key))
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


@dataclass(frozen=True)
class CheckedCopy:
    """The server's copy of one pending upload, and what it holds."""

    stored_key: str
    stored: StoredObject | None  # None: the phone never posted the file
    problem: ShanzhiError | None


@dataclass(frozen=True)
class PreparedClaim:
    """Uploads a request names, copied and checked before it wrote anything
    (`prepare_claim`); `claim_uploads` attaches them inside the request's transaction."""

    owner_id: uuid.UUID
    upload_ids: tuple[uuid.UUID, ...]
    purposes: frozenset[UploadPurpose]
    copies: Mapping[uuid.UUID, CheckedCopy]


def stored_key(store: ObjectStore, owner_id: uuid.UUID) -> str:
    # Outside the `u/` keys that POST policies name: no client can ever write here.
    return f"s/{store.owner_prefix(owner_id)}/{secrets.token_hex(16)}"


async def prepare_claim(
    session: AsyncSession,
    store: ObjectStore,
    owner_id: uuid.UUID,
    upload_ids: Sequence[uuid.UUID],
    purposes: Collection[UploadPurpose],
) -> PreparedClaim:
    """Copy each pending upload the caller names to a key no POST policy can write and check
    the copy: exactly the declared size and type, and that type's magic number.

    Call it before the request writes or locks anything: the S3 work is done with the
    request's database connection handed back to the pool (`release_connection`), so a
    slow or dead S3 never keeps a connection idle in a transaction. Nothing is decided
    here: `claim_uploads` reads the rows again under lock and raises the first problem.
    """
    ids = tuple(upload_ids)
    seen: set[uuid.UUID] = set()
    for upload_id in ids:
        if upload_id in seen:
            raise UploadDuplicate(upload_id)
        seen.add(upload_id)
    wanted = frozenset(purposes)
    if not ids:
        return PreparedClaim(owner_id, ids, wanted, {})
    result = await session.execute(
        select(Upload).where(col(Upload.id).in_(ids), col(Upload.owner_id) == owner_id)
    )
    rows = {upload.id: upload for upload in result.scalars()}
    # Only the uploads before the first row-level problem need looking at in S3.
    pending: list[Upload] = []
    for upload_id in ids:
        upload = rows.get(upload_id)
        if _row_problem(upload_id, upload, wanted) is not None:
            break
        assert upload is not None
        pending.append(upload)
    await release_connection(session)

    async def copy(upload: Upload) -> CheckedCopy:
        staging_key, key = upload.object_key, stored_key(store, owner_id)
        stored = await store.call(
            "checking an upload", lambda: _copy_and_probe(store, staging_key, key)
        )
        return CheckedCopy(key, stored, _object_problem(upload, stored))

    copies = await asyncio.gather(*(copy(upload) for upload in pending))
    checked = {upload.id: c for upload, c in zip(pending, copies, strict=True)}
    if any(c.problem is not None for c in copies):
        # The claim will fail: the copies are not kept.
        await discard_copies(store, copies)
    return PreparedClaim(owner_id, ids, wanted, checked)


async def discard_copies(store: ObjectStore, copies: Sequence[CheckedCopy]) -> None:
    """Remove copies no upload will name (best effort: a leftover is only unused bytes)."""
    keys = [c.stored_key for c in copies if c.stored is not None]
    if not keys:
        return
    try:
        await store.call("discarding copies", lambda: _remove_objects(store, keys))
    except StorageUnavailable:
        log.warning("could not discard %d unused upload copies", len(keys))


async def claim_uploads(session: AsyncSession, prepared: PreparedClaim) -> list[Upload]:
    """Mark attached the uploads of a prepared claim, in the order the request gave them,
    each served from here on from its checked copy.

    Each must be the owner's (else `upload.not_found`, the same as a made-up id), of one of
    the purposes, still pending, and its copy must have passed the checks. The first
    problem, in list order, is raised and nothing is marked. The rows stay locked until the
    transaction ends, so a concurrent claim of the same upload waits and then finds it
    attached.
    """
    if not prepared.upload_ids:
        return []
    # Locked in id order, so two claims of overlapping lists cannot deadlock; refreshed,
    # because a row loaded earlier may have changed while we waited for its lock.
    result = await session.execute(
        select(Upload)
        .where(col(Upload.id).in_(prepared.upload_ids), col(Upload.owner_id) == prepared.owner_id)
        .order_by(col(Upload.id))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    rows = {upload.id: upload for upload in result.scalars()}
    claimed: list[tuple[Upload, CheckedCopy]] = []
    for upload_id in prepared.upload_ids:
        upload = rows.get(upload_id)
        problem = _row_problem(upload_id, upload, prepared.purposes)
        if problem is not None:
            raise problem
        assert upload is not None
        copy = prepared.copies.get(upload_id)
        if copy is None:  # pending now, not when the request began: a retry will copy it
            raise UploadNotUploaded(upload_id)
        if copy.problem is not None:
            raise copy.problem
        claimed.append((upload, copy))

    attached_at = now()
    for upload, copy in claimed:
        assert copy.stored is not None
        upload.state = UploadState.attached
        upload.attached_at = attached_at
        upload.stored_key = copy.stored_key
        upload.size = copy.stored.size
    await session.flush()
    return [upload for upload, _ in claimed]


# --- reading attached files ------------------------------------------------------------


def view_url(store: ObjectStore, upload: Upload, ttl: timedelta = timedelta(minutes=5)) -> str:
    """A short-lived link to the file's checked copy (presigned locally, no network)."""
    key = upload.stored_key
    assert key is not None, "only attached uploads are shown, and each has its copy"
    return store.public_client.presigned_get_object(store.bucket, key, expires=ttl)


# --- cleaning up -------------------------------------------------------------------------


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
    keys = [u.object_key for u in uploads]
    failed = await store.call("removing unattached uploads", lambda: _remove_objects(store, keys))
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


async def remove_staging_copies(
    session: AsyncSession, store: ObjectStore, *, batch: int = 500
) -> int:
    """Remove what phones posted for uploads since attached, once their policy expired (so
    nobody can post there again): only the checked copy stays. How many were removed."""
    result = await session.execute(
        select(Upload)
        .where(
            col(Upload.state) == UploadState.attached,
            col(Upload.staging_removed_at).is_(None),
            col(Upload.expires_at) < now(),
        )
        .order_by(col(Upload.expires_at))
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    uploads = list(result.scalars())
    if not uploads:
        return 0
    keys = [u.object_key for u in uploads if u.object_key != u.stored_key]
    failed = (
        await store.call("removing posted files", lambda: _remove_objects(store, keys))
        if keys
        else set()
    )
    removed_at = now()
    removed = 0
    for upload in uploads:
        if upload.object_key not in failed:
            upload.staging_removed_at = removed_at
            removed += 1
    await session.flush()
    return removed
