"""Volunteers over HTTP: sign-up, approval, teams, records and the leaderboard."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
