"""Mediation proceedings over HTTP: sessions, minutes, the agreement and the outcome."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
