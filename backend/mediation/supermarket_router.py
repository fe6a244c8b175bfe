"""The mediation supermarket over HTTP: studios, mediators, choosing and assigning."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
