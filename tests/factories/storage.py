"""Factories shared by the tests."""

from __future__ import annotations

import httpx

# The smallest file that S3 and the API take for a photo.
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01" + b"\x11" * 2000


async def uploaded_photo(
    client: httpx.AsyncClient, phone: httpx.AsyncClient, headers: dict[str, str]
) -> str:
    ticket = await client.post(
        "/v1/uploads",
        json={"purpose": "case_photo", "content_type": "image/jpeg", "size": len(JPEG)},
        headers=headers,
    )
    assert ticket.status_code == 201, ticket.text
    form = ticket.json()
    posted = await phone.post(
        form["url"], data=form["fields"], files={"file": ("tmp.jpg", JPEG, "image/jpeg")}
    )
    assert posted.status_code in (200, 201, 204), posted.text
    upload_id: str = form["id"]
    return upload_id
