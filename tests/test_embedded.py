"""The embedded PostgreSQL and S3 servers: they start, enforce what they should, and stop."""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import stat
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest
from minio import Minio
from minio.datatypes import PostPolicy
from minio.error import S3Error
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from backend.embedded.postgres import EmbeddedPostgres
from backend.embedded.processes import free_port
from backend.embedded.s3 import EmbeddedS3

BUCKET = "shanzhi-uploads"


@pytest.fixture
def private_tmp() -> Iterator[Path]:
    """A folder like `mktemp -d` makes (mode 0700), as a newcomer's check uses."""
    path = Path(tempfile.mkdtemp(prefix="shanzhi-embedded-"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o700
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _live(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _postgres_processes(pgdata: Path) -> list[psutil.Process]:
    # The postmaster names pgdata on its command line; its children only share its cwd.
    found = []
    for process in psutil.process_iter(["name", "cmdline", "cwd"]):
        info = process.info
        if info["name"] != "postgres" or not _live(process):
            continue
        if info["cwd"] == str(pgdata) or str(pgdata) in " ".join(info["cmdline"] or []):
            found.append(process)
    return found


def _weed_processes(root: Path) -> list[psutil.Process]:
    return [
        process
        for process in psutil.process_iter(["cmdline"])
        if f"-dir={root}" in (process.info["cmdline"] or []) and _live(process)
    ]


def test_free_port_is_bindable() -> None:
    import socket

    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


# --------------------------------------------------------------------------- PostgreSQL


async def _fetchval(socket_dir: str, database: str, query: str) -> str:
    connection = await asyncpg.connect(host=socket_dir, user="postgres", database=database)
    try:
        return str(await connection.fetchval(query))
    finally:
        await connection.close()


async def _current_database(url: str) -> str:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return str((await connection.execute(text("select current_database()"))).scalar())
    finally:
        await engine.dispose()


def test_postgres_starts_in_private_folder_and_stops(private_tmp: Path) -> None:
    postgres = EmbeddedPostgres(private_tmp / "data")
    try:
        url = postgres.start()
        assert postgres.start() == url  # a second start reuses the running server
        parsed = make_url(url)
        assert parsed.drivername == "postgresql+asyncpg"
        assert (parsed.username, parsed.database) == ("postgres", "postgres")
        socket_dir = str(parsed.query["host"])
        assert (Path(socket_dir) / f".s.PGSQL.{postgres.port}").is_socket()

        version = asyncio.run(_fetchval(socket_dir, "postgres", "select version()"))
        assert version.startswith("PostgreSQL 18")

        database_url = postgres.ensure_database("shanzhi_embedded")
        assert postgres.ensure_database("shanzhi_embedded") == database_url  # exists: no error
        assert asyncio.run(_current_database(database_url)) == "shanzhi_embedded"
        assert _postgres_processes(postgres.pgdata)
    finally:
        postgres.stop()
    assert _postgres_processes(postgres.pgdata) == []
    assert not (Path(socket_dir) / f".s.PGSQL.{postgres.port}").exists()
    postgres.stop()  # idempotent


# --------------------------------------------------------------------------- S3


@pytest.fixture(scope="module")
def s3_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="shanzhi-s3-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def s3(s3_dir: Path) -> Iterator[EmbeddedS3]:
    server = EmbeddedS3(s3_dir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _client(server: EmbeddedS3, secret_key: str | None = None) -> Minio:
    # region= keeps presigning local instead of asking the server for the bucket's location.
    return Minio(
        server.endpoint,
        access_key=server.access_key,
        secret_key=secret_key or server.secret_key,
        secure=False,
        region="us-east-1",
    )


def _ensure_bucket(client: Minio) -> None:
    if not client.bucket_exists(BUCKET):
        client.make_bucket(BUCKET)


def test_s3_enforces_signatures(s3: EmbeddedS3) -> None:
    client = _client(s3)
    _ensure_bucket(client)
    client.put_object(BUCKET, "signed.txt", io.BytesIO(b"signed"), 6)
    assert client.get_object(BUCKET, "signed.txt").read() == b"signed"

    with pytest.raises(S3Error) as refused:
        _client(s3, secret_key="not-the-secret").list_buckets()
    assert refused.value.code == "SignatureDoesNotMatch"

    stranger = Minio(
        s3.endpoint, access_key="nobody", secret_key="x" * 20, secure=False, region="us-east-1"
    )
    with pytest.raises(S3Error) as unknown:
        stranger.get_object(BUCKET, "signed.txt")
    assert unknown.value.code == "InvalidAccessKeyId"

    anonymous = httpx.get(f"{s3.url}/{BUCKET}/signed.txt")
    assert anonymous.status_code == 403


def test_s3_presigned_post_policy_is_enforced(s3: EmbeddedS3) -> None:
    client = _client(s3)
    _ensure_bucket(client)
    policy = PostPolicy(BUCKET, datetime.now(UTC) + timedelta(minutes=10))
    policy.add_starts_with_condition("key", "u/1/")
    policy.add_content_length_range_condition(1, 1000)
    fields = client.presigned_post_policy(policy)

    def post(key: str, content: bytes) -> httpx.Response:
        return httpx.post(
            f"{s3.url}/{BUCKET}",
            data={**fields, "key": key},
            files={"file": ("photo.jpg", content, "image/jpeg")},
        )

    accepted = post("u/1/photo.jpg", b"small photo")
    assert accepted.status_code in (200, 201, 204), accepted.text
    assert client.get_object(BUCKET, "u/1/photo.jpg").read() == b"small photo"

    outside = post("u/2/photo.jpg", b"small photo")
    assert outside.status_code == 403, outside.text
    assert "AccessDenied" in outside.text

    too_big = post("u/1/big.jpg", b"x" * 1001)
    assert too_big.status_code == 400, too_big.text
    assert "EntityTooLarge" in too_big.text

    for key in ("u/2/photo.jpg", "u/1/big.jpg"):
        with pytest.raises(S3Error) as missing:
            client.stat_object(BUCKET, key)
        assert missing.value.code == "NoSuchKey"


def test_s3_restart_keeps_objects_and_stop_leaves_nothing(s3: EmbeddedS3, s3_dir: Path) -> None:
    client = _client(s3)
    _ensure_bucket(client)
    client.put_object(BUCKET, "kept.txt", io.BytesIO(b"still here"), 10)
    endpoint, keys = s3.endpoint, (s3.access_key, s3.secret_key)
    credentials = s3.root / "credentials.json"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert json.loads(credentials.read_text())["secret_key"] == s3.secret_key

    assert _weed_processes(s3.root)
    s3.stop()
    assert _weed_processes(s3.root) == []
    s3.stop()  # idempotent

    again = EmbeddedS3(s3_dir)
    again.start()
    try:
        # Same address and keys: stored objects and configured clients keep working.
        assert again.endpoint == endpoint
        assert (again.access_key, again.secret_key) == keys
        assert _client(again).get_object(BUCKET, "kept.txt").read() == b"still here"
    finally:
        again.stop()
    assert _weed_processes(again.root) == []
    ports = json.loads((again.root / "ports.json").read_text())
    leftovers = [
        p for port in ports.values() for p in Path("/tmp").glob(f"seaweedfs-*-{port}.sock")
    ]
    assert leftovers == []
