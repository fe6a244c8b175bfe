"""Uploads: presigned POST policies against the real embedded S3, and the claim checks."""

from __future__ import annotations

import asyncio
import io
import re
import secrets
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from minio.error import S3Error
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlmodel import col

from backend.auth.models import User
from backend.core.clock import clock, now
from backend.core.config import Settings
from backend.core.database import create_sessionmaker, release_connection
from backend.storage import service as storage_service
from backend.storage.errors import (
    StorageUnavailable,
    UploadAlreadyAttached,
    UploadDuplicate,
    UploadNotFound,
    UploadNotUploaded,
    UploadSizeMismatch,
    UploadTypeMismatch,
    UploadWrongPurpose,
)
from backend.storage.models import Upload, UploadPurpose, UploadState
from backend.storage.service import ObjectStore
from tests.conftest import Login, assert_problem, bearer
from tests.factories.storage import JPEG

PHOTO = {UploadPurpose.case_photo}
# Real files start like this; the rest of the bytes do not matter to the checks.
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x22" * 1500
WEBP = b"RIFF\x24\x08\x00\x00WEBPVP8 " + b"\x33" * 100
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x44" * 100
MP4 = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2" + b"\x55" * 100


@pytest.fixture
def store(app: FastAPI) -> ObjectStore:
    object_store: ObjectStore = app.state.object_store
    return object_store


async def claim(
    session: AsyncSession,
    store: ObjectStore,
    owner_id: uuid.UUID,
    upload_ids: list[uuid.UUID],
    purposes: set[UploadPurpose],
) -> list[Upload]:
    """What a request does: copy and check in S3 first, then attach under lock."""
    await session.commit()  # what the test wrote so far is settled, as a request's reads are
    prepared = await storage_service.prepare_claim(session, store, owner_id, upload_ids, purposes)
    return await storage_service.claim_uploads(session, prepared)


async def resident(login: Login, name: str = "resident") -> tuple[dict[str, str], uuid.UUID]:
    tokens = await login(f"uploads-{name}-{secrets.token_hex(4)}")
    return bearer(tokens), uuid.UUID(tokens["user"]["id"])


async def create(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    content_type: str = "image/jpeg",
    size: int = len(JPEG),
    purpose: str = "case_photo",
) -> dict[str, Any]:
    response = await client.post(
        "/v1/uploads",
        json={"purpose": purpose, "content_type": content_type, "size": size},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    ticket: dict[str, Any] = response.json()
    return ticket


async def post_file(
    phone: httpx.AsyncClient,
    ticket: dict[str, Any],
    content: bytes,
    **field_changes: str,
) -> httpx.Response:
    """Post the form exactly as wx.uploadFile does: `formData` fields, then the file."""
    fields = {**ticket["fields"], **field_changes}
    return await phone.post(
        ticket["url"],
        data=fields,
        files={"file": ("tmp_photo", content, "application/octet-stream")},
    )


async def upload_state(client: httpx.AsyncClient, headers: dict[str, str], upload_id: str) -> str:
    response = await client.get(f"/v1/uploads/{upload_id}", headers=headers)
    assert response.status_code == 200, response.text
    state: str = response.json()["state"]
    return state


def object_in_s3(store: ObjectStore, key: str) -> bool:
    try:
        store.client.stat_object(store.bucket, key)
    except S3Error as error:
        assert error.code == "NoSuchKey"
        return False
    return True


# --- the happy path ------------------------------------------------------------------


async def test_upload_then_claim(
    client: httpx.AsyncClient,
    login: Login,
    phone: httpx.AsyncClient,
    session: AsyncSession,
    store: ObjectStore,
) -> None:
    headers, user_id = await resident(login)
    before = now()
    ticket = await create(client, headers, size=len(JPEG))

    prefix = store.owner_prefix(user_id)
    assert re.fullmatch(rf"u/{prefix}/[0-9a-f]{{32}}", ticket["key"])
    assert str(user_id) not in ticket["key"]
    assert ticket["fields"]["key"] == ticket["key"]
    assert ticket["fields"]["Content-Type"] == "image/jpeg"
    assert {"policy", "x-amz-signature", "x-amz-credential", "x-amz-date"} <= set(ticket["fields"])
    assert ticket["max_size"] == len(JPEG)
    assert ticket["url"] == f"{store.public_url}/{store.bucket}"
    expires = datetime.fromisoformat(ticket["expires_at"])
    assert timedelta(minutes=14) < expires - before <= timedelta(minutes=15, seconds=5)

    read = await client.get(f"/v1/uploads/{ticket['id']}", headers=headers)
    assert read.status_code == 200
    assert read.json() | {"expires_at": None} == {
        "id": ticket["id"],
        "purpose": "case_photo",
        "content_type": "image/jpeg",
        "size": len(JPEG),
        "state": "pending",
        "expires_at": None,
    }

    posted = await post_file(phone, ticket, JPEG)
    assert posted.status_code == 204, posted.text
    assert await upload_state(client, headers, ticket["id"]) == "uploaded"

    upload_id = uuid.UUID(ticket["id"])
    claimed = await claim(session, store, user_id, [upload_id], PHOTO)
    assert [u.id for u in claimed] == [upload_id]
    assert claimed[0].state == UploadState.attached
    assert claimed[0].size == len(JPEG)
    assert claimed[0].attached_at is not None
    await session.commit()
    assert await upload_state(client, headers, ticket["id"]) == "attached"


async def test_every_accepted_type_can_be_claimed_in_one_go(
    client: httpx.AsyncClient,
    login: Login,
    phone: httpx.AsyncClient,
    session: AsyncSession,
    store: ObjectStore,
) -> None:
    headers, user_id = await resident(login)
    files = [
        ("case_photo", "image/jpeg", JPEG),
        ("case_photo", "image/png", PNG),
        ("case_photo", "image/webp", WEBP),
        ("case_photo", "image/heic", HEIC),
        ("case_video", "video/mp4", MP4),
    ]
    ids = []
    for purpose, content_type, content in files:
        ticket = await create(client, headers, content_type, len(content), purpose)
        assert (await post_file(phone, ticket, content)).status_code == 204
        ids.append(uuid.UUID(ticket["id"]))

    purposes = {UploadPurpose.case_photo, UploadPurpose.case_video}
    claimed = await claim(session, store, user_id, ids, purposes)
    assert [u.id for u in claimed] == ids  # in the order the report named them
    assert all(u.state == UploadState.attached for u in claimed)


async def test_view_url_serves_the_file(
    client: httpx.AsyncClient,
    login: Login,
    phone: httpx.AsyncClient,
    session: AsyncSession,
    store: ObjectStore,
) -> None:
    headers, user_id = await resident(login)
    ticket = await create(client, headers, "image/png", len(PNG))
    assert (await post_file(phone, ticket, PNG)).status_code == 204
    [upload] = await claim(session, store, user_id, [uuid.UUID(ticket["id"])], PHOTO)

    url = storage_service.view_url(store, upload)
    assert url.startswith(store.public_url)
    fetched = await phone.get(url)
    assert fetched.status_code == 200
    assert fetched.content == PNG
    assert fetched.headers["content-type"] == "image/png"
    # The link is signed: without the signature S3 refuses it.
    assert (await phone.get(url.split("?")[0])).status_code == 403


# --- what S3 itself refuses ----------------------------------------------------------


async def test_s3_refuses_a_file_larger_than_declared(
    client: httpx.AsyncClient, login: Login, phone: httpx.AsyncClient
) -> None:
    headers, _ = await resident(login)
    ticket = await create(client, headers, size=1000)
    posted = await post_file(phone, ticket, JPEG[:1001])
    assert posted.status_code == 400
    assert "EntityTooLarge" in posted.text
    assert await upload_state(client, headers, ticket["id"]) == "pending"


async def test_s3_refuses_another_content_type_or_key(
    client: httpx.AsyncClient, login: Login, phone: httpx.AsyncClient, store: ObjectStore
) -> None:
    headers, _ = await resident(login)
    ticket = await create(client, headers, "image/jpeg", len(PNG))

    other_type = await post_file(phone, ticket, PNG, **{"Content-Type": "image/png"})
    assert other_type.status_code == 403
    assert "AccessDenied" in other_type.text

    # The policy is bound to its one key: it cannot overwrite anything else.
    other_key = f"u/{uuid.uuid4()}/{secrets.token_hex(16)}"
    moved = await post_file(phone, ticket, PNG, key=other_key)
    assert moved.status_code == 403
    assert not object_in_s3(store, other_key)
    assert await upload_state(client, headers, ticket["id"]) == "pending"


# --- refused when asking for a form ---------------------------------------------------


@pytest.mark.parametrize(
    ("purpose", "content_type"),
    [
        ("case_photo", "video/mp4"),
        ("case_photo", "image/gif"),
        ("evidence", "application/pdf"),
        ("case_video", "image/jpeg"),
        ("resolution_photo", "text/html"),
    ],
)
async def test_a_type_the_purpose_does_not_take_is_refused(
    client: httpx.AsyncClient, login: Login, purpose: str, content_type: str
) -> None:
    headers, _ = await resident(login)
    response = await client.post(
        "/v1/uploads",
        json={"purpose": purpose, "content_type": content_type, "size": 1000},
        headers={**headers, "Accept-Language": "en"},
    )
    body = assert_problem(response, 422, "upload.type_not_allowed")
    assert content_type in body["detail"]
    assert body["allowed_types"]
    assert content_type not in body["allowed_types"]


async def test_too_large_for_the_purpose_is_refused(
    client: httpx.AsyncClient, login: Login
) -> None:
    headers, _ = await resident(login)
    mb = 1024 * 1024

    photo = await client.post(
        "/v1/uploads",
        json={"purpose": "case_photo", "content_type": "image/jpeg", "size": 10 * mb + 1},
        headers=headers,
    )
    body = assert_problem(photo, 422, "upload.too_large")
    assert body["max_size"] == 10 * mb
    assert "10 MB" in body["detail"]

    video = await client.post(
        "/v1/uploads",
        json={"purpose": "case_video", "content_type": "video/mp4", "size": 50 * mb + 1},
        headers=headers,
    )
    assert_problem(video, 422, "upload.too_large")
    # Exactly at the limit is fine; MIME types are case-insensitive.
    await create(client, headers, "video/MP4", 50 * mb, "case_video")
    await create(client, headers, "image/jpeg", 10 * mb, "evidence")


async def test_malformed_requests_are_422_not_500(client: httpx.AsyncClient, login: Login) -> None:
    headers, _ = await resident(login)
    for body in (
        {"purpose": "case_photo", "content_type": "image/jpeg", "size": 0},
        {"purpose": "selfie", "content_type": "image/jpeg", "size": 10},
        {"purpose": "case_photo", "content_type": "image/jpeg", "size": 10**40},
        {"purpose": "case_photo", "content_type": "x" * 500, "size": 10},
    ):
        response = await client.post("/v1/uploads", json=body, headers=headers)
        assert response.status_code == 422, (body, response.text)
    anonymous = await client.post(
        "/v1/uploads", json={"purpose": "case_photo", "content_type": "image/jpeg", "size": 10}
    )
    assert_problem(anonymous, 401, "auth.unauthenticated")


async def test_creating_uploads_is_rate_limited(
    client: httpx.AsyncClient, login: Login, app: FastAPI
) -> None:
    headers, _ = await resident(login)
    limits: dict[str, str] = app.state.settings.rate_limits
    saved = dict(limits)
    limits["upload_create"] = "2/minute"
    try:
        await create(client, headers)
        await create(client, headers)
        refused = await client.post(
            "/v1/uploads",
            json={"purpose": "case_photo", "content_type": "image/jpeg", "size": 10},
            headers=headers,
        )
        body = assert_problem(refused, 429, "request.rate_limited")
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert body["retry_after"] == int(refused.headers["Retry-After"])
        # Another user has their own allowance.
        other, _ = await resident(login, "other")
        await create(client, other)
    finally:
        limits.clear()
        limits.update(saved)


# --- who may see and claim an upload ----------------------------------------------------


async def test_someone_elses_upload_is_not_found(
    client: httpx.AsyncClient,
    login: Login,
    phone: httpx.AsyncClient,
    session: AsyncSession,
    store: ObjectStore,
) -> None:
    alice, alice_id = await resident(login, "alice")
    bob, bob_id = await resident(login, "bob")
    ticket = await create(client, alice)
    assert (await post_file(phone, ticket, JPEG)).status_code == 204
    upload_id = uuid.UUID(ticket["id"])

    # Bob reading Alice's upload gets the same answer as a made-up id.
    assert_problem(
        await client.get(f"/v1/uploads/{upload_id}", headers=bob), 404, "upload.not_found"
    )
    assert_problem(
        await client.get(f"/v1/uploads/{uuid.uuid4()}", headers=bob), 404, "upload.not_found"
    )

    with pytest.raises(UploadNotFound) as stolen:
        await claim(session, store, bob_id, [upload_id], PHOTO)
    assert stolen.value.upload_id == upload_id
    forged = uuid.uuid4()
    with pytest.raises(UploadNotFound) as made_up:
        await claim(session, store, alice_id, [upload_id, forged], PHOTO)
    assert made_up.value.upload_id == forged
    # Neither attempt attached anything: Alice can still use her photo.
    assert await upload_state(client, alice, ticket["id"]) == "uploaded"
    claimed = await claim(session, store, alice_id, [upload_id], PHOTO)
    assert claimed[0].state == UploadState.attached


async def test_claim_refuses_wrong_purpose_duplicates_and_second_use(
    client: httpx.AsyncClient,
    login: Login,
    phone: httpx.AsyncClient,
    session: AsyncSession,
    store: ObjectStore,
) -> None:
    headers, user_id = await resident(login)
    ticket = await create(client, headers)
    assert (await post_file(phone, ticket, JPEG)).status_code == 204
    upload_id = uuid.UUID(ticket["id"])

    with pytest.raises(UploadWrongPurpose):
        await claim(session, store, user_id, [upload_id], {UploadPurpose.resolution_photo})
    with pytest.raises(UploadDuplicate):
        await claim(session, store, user_id, [upload_id, upload_id], PHOTO)

    await claim(session, store, user_id, [upload_id], PHOTO)
    with pytest.raises(UploadAlreadyAttached) as again:
        await claim(session, store, user_id, [upload_id], PHOTO)
    assert again.value.status == 409
    assert again.value.extra() == {"upload_id": str(upload_id)}


async def test_claim_refuses_a_file_not_uploaded_yet(
    client: httpx.AsyncClient,
    login: Login,
    phone: httpx.AsyncClient,
    session: AsyncSession,
    store: ObjectStore,
) -> None:
    headers, user_id = await resident(login)
    ready = await create(client, headers)
    assert (await post_file(phone, ready, JPEG)).status_code == 204
    waiting = await create(client, headers)
    ids = [uuid.UUID(ready["id"]), uuid.UUID(waiting["id"])]

    with pytest.raises(UploadNotUploaded) as problem:
        await claim(session, store, user_id, ids, PHOTO)
    assert problem.value.upload_id == ids[1]
    assert "not finished uploading" in problem.value.render("en")
    # All or nothing: the photo that was ready is not attached either.
    assert await upload_state(client, headers, ready["id"]) == "uploaded"

    assert (await post_file(phone, waiting, JPEG)).status_code == 204
    claimed = await claim(session, store, user_id, ids, PHOTO)
    assert [u.state for u in claimed] == [UploadState.attached] * 2


async def test_claim_refuses_a_smaller_file_than_declared(
    client: httpx.AsyncClient,
    login: Login,
    phone: httpx.AsyncClient,
    session: AsyncSession,
    store: ObjectStore,
) -> None:
    headers, user_id = await resident(login)
    ticket = await create(client, headers, size=len(JPEG))
    # A cut-off transfer: S3 accepts it (within 1..declared) but it is not the photo.
    assert (await post_file(phone, ticket, JPEG[:500])).status_code == 204
    with pytest.raises(UploadSizeMismatch):
        await claim(session, store, user_id, [uuid.UUID(ticket["id"])], PHOTO)


async def test_claim_refuses_content_that_is_not_the_declared_type(
    client: httpx.AsyncClient,
    login: Login,
    phone: httpx.AsyncClient,
    session: AsyncSession,
    store: ObjectStore,
) -> None:
    headers, user_id = await resident(login)
    # Declared PNG and posted with Content-Type image/png, but the bytes are a JPEG.
    ticket = await create(client, headers, "image/png", len(JPEG))
    assert (await post_file(phone, ticket, JPEG)).status_code == 204
    with pytest.raises(UploadTypeMismatch) as problem:
        await claim(session, store, user_id, [uuid.UUID(ticket["id"])], PHOTO)
    assert "image/png" in problem.value.render("en")

    # An HTML page dressed up as a video.
    page = b"<html><script>alert(1)</script></html>" + b" " * 100
    video = await create(client, headers, "video/mp4", len(page), "case_video")
    assert (await post_file(phone, video, page)).status_code == 204
    with pytest.raises(UploadTypeMismatch):
        await claim(session, store, user_id, [uuid.UUID(video["id"])], {UploadPurpose.case_video})


@pytest.mark.parametrize(
    ("content_type", "good", "bad"),
    [
        ("image/jpeg", JPEG, PNG),
        ("image/png", PNG, JPEG),
        ("image/webp", WEBP, b"RIFF\x24\x08\x00\x00WAVEfmt " + b"\x00" * 8),
        ("image/heic", HEIC, MP4),
        ("video/mp4", MP4, HEIC),
        ("video/mp4", b"\x00\x00\x00\x1cftypmp42\x00\x00\x00\x00", b"\x00\x00\x00\x1cmoov" * 3),
    ],
)
def test_magic_numbers(content_type: str, good: bytes, bad: bytes) -> None:
    assert storage_service.content_matches(content_type, good[:16])
    assert not storage_service.content_matches(content_type, bad[:16])


async def test_one_upload_cannot_be_attached_twice_at_once(
    engine: AsyncEngine, store: ObjectStore
) -> None:
    """Two reports naming the same photo at the same moment: only one gets it."""
    factory = create_sessionmaker(engine)
    # Committed for real (separate connections must see it), under a user of its own.
    async with factory() as db:
        user = User(openid=f"uploads-race-{secrets.token_hex(6)}")
        db.add(user)
        await db.flush()
        offer = await storage_service.create_upload(
            db,
            store,
            user.id,
            UploadPurpose.case_photo,
            "image/jpeg",
            len(JPEG),
            ttl=timedelta(minutes=15),
        )
        await db.commit()
    await asyncio.to_thread(
        store.client.put_object,
        store.bucket,
        offer.upload.object_key,
        io.BytesIO(JPEG),
        len(JPEG),
        content_type="image/jpeg",
    )
    upload_id = offer.upload.id

    async with factory() as first, factory() as second:
        await claim(first, store, user.id, [upload_id], PHOTO)
        # The second claim waits for the first transaction's row lock ...
        racing = asyncio.create_task(claim(second, store, user.id, [upload_id], PHOTO))
        await asyncio.sleep(0.3)
        assert not racing.done()
        await first.commit()
        # ... and then finds the upload attached.
        with pytest.raises(UploadAlreadyAttached):
            await racing
        await second.rollback()

    async with factory() as db:
        row = await db.get(Upload, upload_id)
        assert row is not None
        assert row.state == UploadState.attached


# --- cleaning up ------------------------------------------------------------------------


async def test_purge_removes_uploads_never_attached(
    client: httpx.AsyncClient,
    login: Login,
    phone: httpx.AsyncClient,
    session: AsyncSession,
    store: ObjectStore,
) -> None:
    headers, user_id = await resident(login)
    used = await create(client, headers)
    forgotten = await create(client, headers)
    for ticket in (used, forgotten):
        assert (await post_file(phone, ticket, JPEG)).status_code == 204
    await claim(session, store, user_id, [uuid.UUID(used["id"])], PHOTO)
    await session.commit()

    # Not yet: a day has not passed since the policy expired.
    clock.advance(timedelta(hours=24))
    await storage_service.purge_unattached(session, store)
    waiting = await session.get(Upload, uuid.UUID(forgotten["id"]))
    assert waiting is not None
    assert waiting.state == UploadState.pending
    assert object_in_s3(store, forgotten["key"])

    clock.advance(timedelta(minutes=20))
    # One handed out just now stays, as does the attached one.
    recent = await storage_service.create_upload(
        session,
        store,
        user_id,
        UploadPurpose.case_photo,
        "image/jpeg",
        100,
        ttl=timedelta(minutes=15),
    )
    removed = await storage_service.purge_unattached(session, store)
    assert removed >= 1

    gone = await session.get(Upload, uuid.UUID(forgotten["id"]), populate_existing=True)
    assert gone is not None
    assert gone.state == UploadState.deleted
    assert gone.deleted_at is not None
    assert not object_in_s3(store, forgotten["key"])

    kept = await session.get(Upload, uuid.UUID(used["id"]), populate_existing=True)
    assert kept is not None
    assert kept.state == UploadState.attached
    assert object_in_s3(store, used["key"])
    assert recent.upload.state == UploadState.pending

    # A row whose object is already gone (a run whose commit failed) is still cleaned up:
    # a missing object is no error.
    gone.state = UploadState.pending
    await session.flush()
    assert await storage_service.purge_unattached(session, store) >= 1
    assert gone.state == UploadState.deleted


async def test_purge_skips_uploads_another_transaction_holds(
    engine: AsyncEngine, store: ObjectStore
) -> None:
    """Several workers may purge at once: a row one holds is left to it, without waiting."""
    factory = create_sessionmaker(engine)
    async with factory() as db:
        user = User(openid=f"uploads-purge-{secrets.token_hex(6)}")
        db.add(user)
        await db.flush()
        offers = [
            await storage_service.create_upload(
                db, store, user.id, UploadPurpose.case_photo, "image/jpeg", 10, ttl=timedelta(0)
            )
            for _ in range(2)
        ]
        await db.commit()
    held, free = (offer.upload.id for offer in offers)
    clock.advance(timedelta(hours=25))

    async with factory() as first, factory() as second:
        # The first worker is busy with one row.
        await first.execute(select(Upload).where(col(Upload.id) == held).with_for_update())
        # The second does not wait for it, and takes the other.
        await asyncio.wait_for(storage_service.purge_unattached(second, store), timeout=5)
        await second.commit()
        await first.rollback()

    async with factory() as db:
        states = {
            upload_id: (await db.get(Upload, upload_id)).state  # type: ignore[union-attr]
            for upload_id in (held, free)
        }
    assert states == {held: UploadState.pending, free: UploadState.deleted}


async def test_what_the_phone_posted_is_removed_once_the_policy_expired(
    client: httpx.AsyncClient,
    login: Login,
    phone: httpx.AsyncClient,
    session: AsyncSession,
    store: ObjectStore,
) -> None:
    headers, user_id = await resident(login)
    ticket = await create(client, headers)
    assert (await post_file(phone, ticket, JPEG)).status_code == 204
    [upload] = await claim(session, store, user_id, [uuid.UUID(ticket["id"])], PHOTO)
    await session.commit()
    assert upload.stored_key is not None and upload.stored_key.startswith("s/")
    assert object_in_s3(store, ticket["key"]) and object_in_s3(store, upload.stored_key)

    # While the policy is valid the phone could post again: the posted file stays until then.
    assert await storage_service.remove_staging_copies(session, store) == 0
    clock.advance(timedelta(minutes=16))
    assert await storage_service.remove_staging_copies(session, store) >= 1
    await session.commit()
    assert not object_in_s3(store, ticket["key"])
    assert (await phone.get(storage_service.view_url(store, upload))).content == JPEG
    assert await storage_service.remove_staging_copies(session, store) == 0


async def test_a_claim_that_fails_its_checks_keeps_no_copy(
    client: httpx.AsyncClient,
    login: Login,
    phone: httpx.AsyncClient,
    session: AsyncSession,
    store: ObjectStore,
) -> None:
    headers, user_id = await resident(login)
    ticket = await create(client, headers, size=len(PNG))
    assert (await post_file(phone, ticket, PNG)).status_code == 204  # declared a JPEG
    await session.commit()
    prepared = await storage_service.prepare_claim(
        session, store, user_id, [uuid.UUID(ticket["id"])], PHOTO
    )
    [copy] = prepared.copies.values()
    assert isinstance(copy.problem, UploadTypeMismatch)
    assert not object_in_s3(store, copy.stored_key)
    with pytest.raises(UploadTypeMismatch):
        await storage_service.claim_uploads(session, prepared)


# --- S3 down ------------------------------------------------------------------------------


async def test_a_dead_s3_is_refused_fast_then_at_once(settings: Settings) -> None:
    from backend.embedded.processes import free_port

    dead = ObjectStore(
        settings.model_copy(
            update={"s3_endpoint": f"127.0.0.1:{free_port()}", "s3_breaker_seconds": 1}
        )
    )
    try:
        started = time.perf_counter()
        with pytest.raises(StorageUnavailable) as first:
            await dead.ping()
        assert time.perf_counter() - started < 1  # refused: one retry, no backoff ladder
        assert first.value.retry_after_seconds == 1
        # Known down: refused without trying.
        started = time.perf_counter()
        with pytest.raises(StorageUnavailable):
            await dead.ping()
        assert time.perf_counter() - started < 0.01
        # After the breaker's time, S3 is tried again (and is still down).
        await asyncio.sleep(1.05)
        with pytest.raises(StorageUnavailable) as again:
            await dead.ping()
        assert isinstance(again.value.__cause__, Exception)
    finally:
        dead.close()


async def test_release_connection_refuses_after_a_write(session: AsyncSession) -> None:
    session.add(User(openid=f"uploads-release-{secrets.token_hex(4)}"))
    await session.flush()
    with pytest.raises(RuntimeError, match="after the request wrote"):
        await release_connection(session)
