"""The region tree and the grid map: locate a point, read regions, and let admins change them."""

from fastapi import APIRouter

from backend.regions.router import admin_router
from backend.regions.router import router as public_router

router = APIRouter()
router.include_router(public_router)
router.include_router(admin_router)
