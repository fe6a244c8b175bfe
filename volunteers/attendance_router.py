"""Attendance over HTTP: the check-in code, check-in and out, tracks, review, inspections."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
