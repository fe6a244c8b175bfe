"""Activities over HTTP: publishing, listing near me, enrolment and the waitlist."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
