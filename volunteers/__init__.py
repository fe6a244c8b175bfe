"""Volunteers: sign-up and teams, activities with enrolment, attendance checked on site and
paid through the points ledger, and inspections that file reports."""

from fastapi import APIRouter

from volunteers.activities.router import router as activities_router
from volunteers.attendance.router import router as attendance_router
from volunteers.inspections.router import router as inspections_router
from volunteers.registrations.router import router as registrations_router

router = APIRouter()
router.include_router(registrations_router)
router.include_router(activities_router)
router.include_router(attendance_router)
router.include_router(inspections_router)
