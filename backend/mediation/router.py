"""Mediation over HTTP: the request, invitations and consent, the case as each side sees it."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
