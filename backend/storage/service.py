"""Object storage through the `minio` client (any S3 server: MinIO, SeaweedFS, ...).

The client is synchronous, so every call that talks to the server runs in a thread;
presigning is local arithmetic because the region is given explicitly.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

from minio import Minio
from minio.error import S3Error

from backend.core.config import Settings

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
        self.public_client = Minio(
            parts.netloc,
            access_key=settings.s3_access_key,
            secret_key=secret,
            secure=parts.scheme == "https",
            region=settings.s3_region,
        )

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
